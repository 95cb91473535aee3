"""The probe check: embed the probe set with a version as served, store and export the metrics,
and alarm (asking for retraining) when production's metric has fallen too far since the version's
first check, or below an absolute floor if one is set."""

from __future__ import annotations

import time

from embedloop.core.evaluation.probes import evaluate_probes
from embedloop.core.models.registry import PRODUCTION
from embedloop.core.models.versions import graph_key, load_encoder
from embedloop.core.progress import Progress, no_progress
from embedloop.core.state import State
from embedloop.monitoring import metrics
from embedloop.monitoring.report import CheckReport, CheckStatus

NAME = "probe"


def probe_alarm(value: float, baseline: float | None, floor: float | None, max_drop: float,
                metric: str = "mrr@10") -> str | None:
    """Why the probe metric is alarming, or None."""
    if floor is not None and value < floor:
        return f"{metric} {value:.4f} is below the floor {floor:.4f}"
    if baseline is not None and value < baseline - max_drop:
        return f"{metric} {value:.4f} dropped more than {max_drop:.4f} below {baseline:.4f} at promotion"
    return None


class ProbeCheck:
    def __init__(self, state: State) -> None:
        self.state = state
        self.settings = state.settings.probes

    def __call__(self, version: str | None = None, progress: Progress = no_progress) -> CheckReport:
        """Check ``version`` (default: production); only production's figures can alarm."""
        report = self._run(version, progress)
        metrics.CHECK_LAST_RUN.labels(NAME).set(time.time())
        return report

    def _run(self, version: str | None, progress: Progress) -> CheckReport:
        p, state = self.settings, self.state
        production = state.registry.alias(PRODUCTION)
        version = version or production
        if version is None:
            return CheckReport(NAME, None, CheckStatus.SKIPPED, message="nothing in production")
        model = state.registry.get(version)
        probes = state.probes.load()
        if not probes.query_ids and p.dataset is not None:  # the configured probe set, on first use
            state.probes.import_beir(p.dataset, p.split, p.group_field)
            probes = state.probes.load()
        if not probes.query_ids:
            return CheckReport(NAME, version, CheckStatus.SKIPPED, message="the probe set is empty")
        result = evaluate_probes(load_encoder(state.settings, model), graph_key(model), probes,
                                 state.settings.corpus_cache_dir, progress)
        first = state.checks.first_probe_run(version)
        baseline = first.metrics.get(p.metric) if first else None  # the version's first check sets it
        value = result["metrics"][p.metric]
        alarm = probe_alarm(value, baseline, p.floor, p.max_drop, p.metric) if version == production else None
        state.checks.add_probe_run(version, result["metrics"], result["groups"], alarm)
        self.export(version, result, alarm)
        figures = {**result["metrics"], f"baseline_{p.metric}": baseline, "groups": result["groups"]}
        return CheckReport(NAME, version, CheckStatus.ALARM if alarm else CheckStatus.OK, figures,
                           trigger="probe_recall" if alarm else None, message=alarm or "")

    @staticmethod
    def export(version: str, result: dict, alarm: str | None) -> None:
        for k in (1, 5, 10):
            metrics.PROBE_RECALL.labels(version, str(k)).set(result["metrics"][f"recall@{k}"])
        metrics.PROBE_MRR.labels(version).set(result["metrics"]["mrr@10"])
        metrics.PROBE_NDCG.labels(version).set(result["metrics"]["ndcg@10"])
        for group, m in result["groups"].items():
            metrics.PROBE_GROUP_RECALL.labels(version, group).set(m["recall@10"])
        metrics.PROBE_ALARM.labels(version).set(1 if alarm else 0)
