"""Promotion gates, measured on the candidate's int8 graph exactly as it would be served.

1. **probe gain** — per query, candidate vs production on the probe set: the one-sided lower
   confidence bound of the mean gain in ``gates.metric`` must reach ``gates.min_gain``;
2. **earlier probes** — on the probe queries that existed when production was promoted, the
   candidate must not have confidently fallen by more than ``gates.max_regression``;
3. **groups** and **origins** — the same for every probe group with enough queries, and for
   imported vs feedback-derived probes;
4. **compatibility** (with ``gates.compatibility: require``; otherwise only recorded) — the
   candidate's queries against production's document vectors must reach production's own figure
   minus ``gates.compatibility_tolerance``. With it, a query adapter into production's space is
   fitted and measured (:mod:`embedloop.core.models.adapters`): not a gate, a second way to serve;
5. **STS** — Spearman on ``gates.sts_dataset`` ≥ ``gates.sts_min_ratio`` × the parent's;
6. **retention** — MRR@10 on ``gates.retention_dataset`` (general-domain retrieval, never trained
   on) ≥ ``gates.retention_min_ratio`` × the parent's.

A gate without what it needs is *skipped* and says why; only gates that ran can pass. (int8 parity
is enforced at export; its figures are recorded here.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from embedloop.core.evaluation.changes import changed_queries
from embedloop.core.evaluation.compatibility import compatibility, cross_scores, fit_query_adapter
from embedloop.core.evaluation.corpus_cache import cached_corpus_embeddings
from embedloop.core.evaluation.paired import PairedComparison, compare
from embedloop.core.evaluation.probes import ProbeScores, score_probes
from embedloop.core.evaluation.sts import sts_spearman
from embedloop.core.labels.probes import ProbeSet, probe_set_of
from embedloop.core.models.encoder import OnnxEncoder
from embedloop.core.progress import Progress, no_progress
from embedloop.core.settings import GateSettings


class GateStatus(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class Gate:
    name: str
    status: GateStatus
    detail: str


@dataclass(frozen=True)
class ServedGraph:
    """A version's int8 graph as served, and the key its corpus embeddings are cached under."""

    key: str
    encoder: OnnxEncoder


@dataclass
class GateReport:
    metric: str
    gates: list[Gate] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    adapter: np.ndarray | None = None  # a query adapter into production's space, to register with the candidate

    @property
    def passed(self) -> bool:
        return not any(g.status is GateStatus.FAILED for g in self.gates)

    @property
    def reasons(self) -> list[str]:
        return [g.detail for g in self.gates if g.status is GateStatus.FAILED]

    @property
    def skipped(self) -> list[str]:
        return [f"{g.name}: {g.detail}" for g in self.gates if g.status is GateStatus.SKIPPED]

    def add(self, name: str, passed: bool | None, detail: str) -> None:
        """``passed`` None: skipped."""
        status = GateStatus.SKIPPED if passed is None else GateStatus.PASSED if passed else GateStatus.FAILED
        self.gates.append(Gate(name, status, detail))

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": self.reasons, "skipped": self.skipped, "metric": self.metric,
                "gates": [{**asdict(g), "status": g.status.value} for g in self.gates], **self.figures}


def signed(value: float) -> str:
    return f"{value:+.4f}"


class Gates:
    def __init__(self, settings: GateSettings, cache_dir: Path, progress: Progress = no_progress) -> None:
        self.settings, self.cache_dir, self.progress = settings, cache_dir, progress

    def compare(self, candidate: np.ndarray, baseline: np.ndarray, threshold: float) -> PairedComparison:
        s = self.settings
        return compare(candidate, baseline, threshold, s.confidence, s.resamples)

    def run(self, candidate: ServedGraph, production: ServedGraph, parent: ServedGraph, probes: ProbeSet,
            promoted_at: float | None, parity: dict | None = None) -> GateReport:
        report = GateReport(self.settings.metric, figures={"parity": parity or {}})
        if probes.query_ids:
            mine = score_probes(candidate.encoder, candidate.key, probes, self.cache_dir, self.progress)
            theirs = score_probes(production.encoder, production.key, probes, self.cache_dir, self.progress)
            self.probe_gates(report, mine, theirs, promoted_at)
            self.compatibility_gate(report, candidate, production, mine, theirs)
        else:
            report.add("probe gain", False, "the probe set is empty: no evidence the candidate is better")
        self.sts_gate(report, candidate, parent)
        self.retention_gate(report, candidate, parent)
        return report

    # -- the probe set ---------------------------------------------------------------------------
    def probe_gates(self, report: GateReport, mine: ProbeScores, theirs: ProbeScores,
                    promoted_at: float | None) -> None:
        s, metric, probes = self.settings, self.settings.metric, mine.probes
        for side, scores in (("candidate", mine), ("production", theirs)):
            summary = scores.summary()
            report.figures[f"{side}_probe"] = summary["metrics"]
            report.figures[f"{side}_probe_groups"] = summary["groups"]
        a, b = mine.per_query[metric], theirs.per_query[metric]
        gain = self.compare(a, b, s.min_gain)
        report.figures["gain"] = gain.as_dict()
        report.figures["changed_queries"] = changed_queries(mine, theirs, metric, s.changed_queries)
        bound = f"{s.confidence:.0%} lower bound {signed(gain.ci_low)}"
        if gain.clears:
            report.add("probe gain", True, f"{metric} {signed(gain.mean)} ({bound}) on {gain.queries} queries")
        else:
            needed = (f"about {gain.queries_needed} probe queries would decide a gain this size"
                      if gain.queries_needed else "no gain to confirm")
            report.add("probe gain", False, f"probe {metric} {gain.candidate:.4f} vs production's {gain.baseline:.4f}: "
                       f"gain {signed(gain.mean)} ({bound}) does not clear {s.min_gain:g} on {gain.queries} queries; "
                       f"{needed}")

        earlier = np.flatnonzero(np.array(probes.added_at) <= promoted_at) if promoted_at is not None else []
        if len(earlier):
            change = self.compare(a[earlier], b[earlier], -s.max_regression)
            report.figures["previous_probe"] = change.as_dict()
            fell = change.confidently_below(-s.max_regression)
            report.add("earlier probes", not fell, f"{metric} {signed(change.mean)} on the {change.queries} probe "
                       f"queries production was promoted on ({s.confidence:.0%} upper bound {signed(change.ci_high)},"
                       f" tolerance {s.max_regression:g})")
        else:
            report.add("earlier probes", None, "no probe queries existed when production was promoted")
        for name, labels in (("groups", probes.groups), ("origins", probes.origins)):
            self.subsets_gate(report, name, np.array(labels), a, b)

    def compatibility_gate(self, report: GateReport, candidate: ServedGraph, production: ServedGraph,
                           mine: ProbeScores, theirs: ProbeScores) -> None:
        """The candidate's queries against production's corpus vectors: what a client that keeps its index
        gets. Recorded, and with ``gates.compatibility: require`` a gate."""
        s = self.settings
        if s.compatibility == "off":
            return
        cross = cross_scores(mine, production.encoder, production.key, self.cache_dir, self.progress)
        figures = compatibility(cross, mine, theirs, s.metric, s.compatibility_tolerance)
        report.figures["compatibility"] = figures
        if s.query_adapter:
            figures["adapter"] = self.adapter(report, candidate, production, mine, theirs)
        if s.compatibility == "require":
            cross, older = figures["cross"][s.metric], figures["older"][s.metric]
            report.add("compatibility", figures["compatible"],
                       f"{s.metric} of its queries against production's stored vectors {cross:.4f} vs production's "
                       f"own {older:.4f} (tolerance {s.compatibility_tolerance:g})")

    def adapter(self, report: GateReport, candidate: ServedGraph, production: ServedGraph, mine: ProbeScores,
                theirs: ProbeScores) -> dict:
        """Fit a query adapter into production's space and measure it; kept (``report.adapter``) when its
        queries retrieve more from production's vectors than both the plain candidate's and production's own."""
        s, probes = self.settings, mine.probes
        new_docs, old_docs = (cached_corpus_embeddings(g.encoder, g.key, probes.doc_ids, probes.doc_texts,
                                                       self.cache_dir, self.progress) for g in (candidate, production))
        fitted = fit_query_adapter(mine, new_docs, old_docs)
        if isinstance(fitted, str):
            return {"served": False, "why": fitted}
        figures = compatibility(fitted.cross, mine, theirs, s.metric, s.compatibility_tolerance)
        plain = report.figures["compatibility"]
        adapted, beaten = figures["cross"][s.metric], max(plain["cross"][s.metric], plain["older"][s.metric])
        served = adapted > beaten
        if served:
            report.adapter = fitted.rotation
        why = "beats" if served else "does not beat"
        return {"cross": figures["cross"], "compatible": figures["compatible"], "kept_gain": figures["kept_gain"],
                "documents": fitted.documents, "served": served,
                "why": f"{s.metric} {adapted:.4f} against production's vectors {why} the plain candidate's and "
                       f"production's own ({beaten:.4f})"}

    def subsets_gate(self, report: GateReport, name: str, labels: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
        """No subset (probe group, or probe origin) with enough queries may confidently fall beyond the tolerance."""
        s, figures, fallen, judged = self.settings, {}, [], 0
        for label in sorted(set(labels.tolist())):
            idx = np.flatnonzero(labels == label)
            if idx.size < s.min_group_queries:
                figures[label] = {"queries": int(idx.size), "mean": float((a[idx] - b[idx]).mean()),
                                  "decided": False, "note": f"fewer than {s.min_group_queries} queries: not gated"}
                continue
            change = self.compare(a[idx], b[idx], -s.max_regression)
            judged += 1
            figures[label] = {**change.as_dict(), "decided": True}
            if change.confidently_below(-s.max_regression):
                fallen.append(f"{label} {signed(change.mean)} (upper bound {signed(change.ci_high)})")
        report.figures[f"probe_{name}"] = figures
        if not judged:
            report.add(name, None, f"no probe {name[:-1]} has {s.min_group_queries} queries")
        elif fallen:
            report.add(name, False, f"{self.settings.metric} fell beyond {s.max_regression:g} in: {', '.join(fallen)}")
        else:
            report.add(name, True, f"none of {judged} {name} fell beyond {s.max_regression:g}")

    # -- general-domain retention ----------------------------------------------------------------
    def sts_gate(self, report: GateReport, candidate: ServedGraph, parent: ServedGraph) -> None:
        s = self.settings
        if s.sts_dataset is None:
            report.add("sts", None, "gates.sts_dataset is not set")
            return
        mine, theirs = sts_spearman(candidate.encoder, s.sts_dataset), sts_spearman(parent.encoder, s.sts_dataset)
        ratio = mine / theirs if theirs > 0 else 0.0
        report.figures["sts"] = {"candidate": mine, "parent": theirs, "ratio": ratio}
        report.add("sts", ratio >= s.sts_min_ratio, f"STS Spearman {mine:.4f} = {ratio:.3f} x the parent's "
                   f"{theirs:.4f} (needs {s.sts_min_ratio:g})")

    def retention_gate(self, report: GateReport, candidate: ServedGraph, parent: ServedGraph) -> None:
        s = self.settings
        if s.retention_dataset is None:
            report.add("retention", None, "gates.retention_dataset is not set")
            return
        retention = probe_set_of(s.retention_dataset, origin="retention")
        mine = score_probes(candidate.encoder, candidate.key, retention, self.cache_dir, self.progress)
        theirs = score_probes(parent.encoder, parent.key, retention, self.cache_dir, self.progress)
        change = self.compare(mine.per_query["mrr@10"], theirs.per_query["mrr@10"], 0.0)
        ratio = change.candidate / change.baseline if change.baseline > 0 else 0.0
        report.figures["retention"] = {"dataset": str(s.retention_dataset), "ratio": ratio, **change.as_dict(),
                                       "groups": {"candidate": mine.summary()["groups"],
                                                  "parent": theirs.summary()["groups"]}}
        report.add("retention", ratio >= s.retention_min_ratio,
                   f"MRR@10 on {Path(s.retention_dataset).name} {change.candidate:.4f} = {ratio:.3f} x the parent's "
                   f"{change.baseline:.4f} (needs {s.retention_min_ratio:g}; {change.better} queries better, "
                   f"{change.worse} worse)")
