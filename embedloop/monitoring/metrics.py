"""Prometheus metrics of the checks, served by the daemon (``daemon.metrics_port``)."""

from prometheus_client import Counter, Gauge

DRIFT_SHARE = Gauge("embedloop_drift_share", "Share of embedding dimensions that drifted in the last window")
DRIFT_MIN_P = Gauge("embedloop_drift_min_p_value", "Smallest corrected p-value in the last window")
DRIFT_MMD_P = Gauge("embedloop_drift_mmd_p_value", "Permutation p-value of the MMD test in the last window")
DRIFT_MAX_KS = Gauge("embedloop_drift_max_ks_statistic", "Largest per-dimension KS statistic in the last window")
DRIFT_WINDOW = Gauge("embedloop_drift_window_size", "Queries in the last drift window")
DRIFT_REFERENCE = Gauge("embedloop_drift_reference_size", "Embeddings in the drift reference")
DRIFT_DECLARED = Gauge("embedloop_drift_declared", "1 while drift is declared (K drifted windows in a row)")
PROBE_RECALL = Gauge("embedloop_probe_recall", "Probe-set recall@k", ["version", "k"])
PROBE_MRR = Gauge("embedloop_probe_mrr", "Probe-set MRR@10", ["version"])
PROBE_NDCG = Gauge("embedloop_probe_ndcg", "Probe-set nDCG@10", ["version"])
PROBE_GROUP_RECALL = Gauge("embedloop_probe_group_recall", "Probe-set recall@10 per group", ["version", "group"])
PROBE_ALARM = Gauge("embedloop_probe_alarm", "1 while the last probe check raised an alarm", ["version"])
CHECK_LAST_RUN = Gauge("embedloop_check_last_run_timestamp_seconds", "When each check last finished", ["check"])
CHECK_FAILURES = Counter("embedloop_check_failures_total", "Checks that raised an error", ["check"])
TRIGGERS = Counter("embedloop_triggers_total", "Retraining triggers by reason and outcome", ["reason", "status"])
