"""The two checks as the daemon and the CLI run them: read state, compute, store, export metrics.

Each returns a small report; a report with ``trigger`` set asks for retraining. Monitoring only
raises the trigger; what is done with it is the daemon's business.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embedloop.core.evaluation import evaluate_probes
from embedloop.core.probes import ProbeStore
from embedloop.core.querylog import QueryLogStore, samples_table
from embedloop.core.registry import PRODUCTION
from embedloop.core.settings import Settings
from embedloop.core.versions import graph_key, load_encoder, open_registry
from embedloop.monitoring import metrics
from embedloop.monitoring.drift import Correction, DriftConfig, detect
from embedloop.monitoring.history import MonitoringStore, Reference
from embedloop.monitoring.probe_check import probe_alarm


@dataclass
class CheckReport:
    check: str
    version: str | None
    status: str  # ok | drifted | declared | alarm | waiting | skipped
    figures: dict[str, Any] = field(default_factory=dict)
    trigger: str | None = None  # reason, when retraining is asked for
    message: str = ""


def drift_config(settings: Settings) -> DriftConfig:
    d = settings.monitoring.drift
    return DriftConfig(alpha=d.alpha, correction=Correction(d.correction), min_ks=d.min_ks,
                       min_share=d.min_share, pca_components=d.pca_components or None)


def uniform_sample(n_items: int, k: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``min(k, n_items)`` items drawn uniformly without replacement."""
    return np.sort(np.random.default_rng(seed).choice(n_items, size=min(k, n_items), replace=False))


def build_reference(settings: Settings, version: str, store: MonitoringStore, since: float | None = None,
                    probes_allowed: bool = True) -> Reference:
    """From the version's logged traffic (since ``since``) when there is enough, else from the
    probe queries."""
    d = settings.monitoring.drift
    querylog = QueryLogStore(settings.querylog_url)
    ids = querylog.sample_ids(version, since)
    if len(ids) >= d.window_size:  # read only the chosen rows: the log may hold a million
        rows = querylog.sample_rows(ids=[ids[i] for i in uniform_sample(len(ids), d.reference_size)])
        emb = np.stack([r.embedding for r in rows])
        return store.save_reference(version, emb, np.array([r.n_tokens for r in rows]), "traffic")
    probes = ProbeStore(settings.monitoring_url).load() if probes_allowed else None
    if probes is None or not probes.query_texts:
        raise LookupError(f"{len(ids)} of {d.window_size} queries logged to build the drift reference from")
    registry = open_registry(settings)
    encoder = load_encoder(settings, registry.get(version))
    texts = [probes.query_texts[i] for i in uniform_sample(len(probes.query_texts), d.reference_size)]
    lengths = np.array([t.n_tokens for t in encoder.tokenize(texts)])
    return store.save_reference(version, encoder.encode(texts), lengths, "probes")


def run_drift_check(settings: Settings) -> CheckReport:
    d = settings.monitoring.drift
    registry = open_registry(settings)
    version = registry.alias(PRODUCTION)
    if version is None:
        return CheckReport("drift", None, "skipped", message="nothing in production")
    store = MonitoringStore(settings.monitoring_url)
    reference = store.reference(version)
    promoted = registry.alias_moved_at(PRODUCTION)
    stale = reference is not None and promoted is not None and reference.built_at < promoted
    if reference is None or stale:
        # A new production version (or one rolled back to): embeddings of another version do not
        # compare, and the traffic it was promoted for is the new normal. Probe queries stand in
        # only on a fresh installation, before any traffic.
        try:
            reference = build_reference(settings, version, store,
                                        since=promoted,
                                        probes_allowed=QueryLogStore(settings.querylog_url).count(samples_table) == 0)
        except LookupError as exc:
            return CheckReport("drift", version, "waiting", message=str(exc))
    last = store.drift_runs(version, limit=1)
    since = max(reference.built_at, last[0].window_end if last else 0.0)
    rows = QueryLogStore(settings.querylog_url).sample_rows(version=version, since=since, newest=d.window_size)
    if len(rows) < d.window_size:
        return CheckReport("drift", version, "waiting",
                           message=f"{len(rows)} of {d.window_size} new queries logged since the last window")
    window = np.stack([r.embedding for r in rows])
    result = detect(reference.embeddings, window, drift_config(settings),
                    reference.lengths, np.array([r.n_tokens for r in rows]))
    streak = 0
    if result.drifted:  # this window, plus the drifted windows right before it
        streak = 1
        for run in store.drift_runs(version, limit=d.consecutive - 1):
            if not run.window_drifted:
                break
            streak += 1
    declared = result.drifted and streak >= d.consecutive
    figures = {**result.as_dict(), "streak": streak, "reference_origin": reference.origin}
    store.add_drift_run(version, max(r.ts for r in rows), result.drifted, declared, figures)
    metrics.DRIFT_SHARE.set(result.share_drifted)
    metrics.DRIFT_MIN_P.set(result.min_p_adjusted)
    metrics.DRIFT_MAX_KS.set(result.max_ks)
    metrics.DRIFT_WINDOW.set(result.window_size)
    metrics.DRIFT_REFERENCE.set(result.reference_size)
    metrics.DRIFT_DECLARED.set(1 if declared else 0)
    status = "declared" if declared else "drifted" if result.drifted else "ok"
    return CheckReport("drift", version, status, figures, trigger="drift" if declared else None)


def run_probe_check(settings: Settings, version: str | None = None, progress=None) -> CheckReport:
    p = settings.monitoring.probes
    registry = open_registry(settings)
    production = registry.alias(PRODUCTION)
    version = version or production
    if version is None:
        return CheckReport("probe", None, "skipped", message="nothing in production")
    store = ProbeStore(settings.monitoring_url)
    probes = store.load()
    if not probes.query_ids and p.dataset is not None:  # the configured probe set, on first use
        store.import_beir(p.dataset, p.split, p.group_field)
        probes = store.load()
    if not probes.query_ids:
        return CheckReport("probe", version, "skipped", message="the probe set is empty")
    model = registry.get(version)
    result = evaluate_probes(load_encoder(settings, model), graph_key(model), probes, settings.corpus_cache_dir,
                             progress)
    store = MonitoringStore(settings.monitoring_url)
    previous = store.probe_runs(version)
    baseline = previous[-1].metrics[p.metric] if previous else None  # the first run: at promotion
    value = result["metrics"][p.metric]
    alarm = probe_alarm(value, baseline, p.floor, p.max_drop, p.metric) if version == production else None
    store.add_probe_run(version, result["metrics"], result["groups"], alarm)
    for k in (1, 5, 10):
        metrics.PROBE_RECALL.labels(version, str(k)).set(result["metrics"][f"recall@{k}"])
    metrics.PROBE_MRR.labels(version).set(result["metrics"]["mrr@10"])
    metrics.PROBE_NDCG.labels(version).set(result["metrics"]["ndcg@10"])
    for group, m in result["groups"].items():
        metrics.PROBE_GROUP_RECALL.labels(version, group).set(m["recall@10"])
    metrics.PROBE_ALARM.labels(version).set(1 if alarm else 0)
    figures = {**result["metrics"], f"baseline_{p.metric}": baseline, "groups": result["groups"]}
    return CheckReport("probe", version, "alarm" if alarm else "ok", figures,
                       trigger="probe_recall" if alarm else None, message=alarm or "")


def record_run(report: CheckReport) -> None:
    metrics.CHECK_LAST_RUN.labels(report.check).set(time.time())
