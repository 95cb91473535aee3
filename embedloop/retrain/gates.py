"""Promotion gates, measured on the candidate's int8 graph exactly as it would be served.

1. probe metric (a setting) >= production's + ``min_gain``;
2. on the probe queries that existed when production was promoted: no loss beyond ``max_regression``;
3. STS Spearman >= ``sts_min_ratio`` x the parent's (when an STS file is configured);
4. int8 parity (export refuses a graph below its thresholds; the figures are recorded here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedloop.core.evaluation.probes import evaluate_probes
from embedloop.core.evaluation.sts import sts_spearman
from embedloop.core.labels.probes import ProbeSet
from embedloop.core.models.artifacts import sha256_file
from embedloop.core.models.encoder import OnnxEncoder
from embedloop.core.models.export import INT8_GRAPH
from embedloop.core.progress import Progress, no_progress
from embedloop.core.settings import GateSettings


@dataclass
class GateReport:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": self.reasons, **self.figures}


def run_gates(settings: GateSettings, cache: Path, candidate: OnnxEncoder, candidate_folder: Path, manifest: dict,
              production: tuple[str, OnnxEncoder] | None, parent: OnnxEncoder, probes: ProbeSet,
              promoted_at: float | None, progress: Progress = no_progress) -> GateReport:
    """Every gate's figures and verdict; ``cache`` holds corpus embeddings per graph."""
    metric = settings.metric
    candidate_key = sha256_file(candidate_folder / INT8_GRAPH)[:16]  # as graph_key() names it once registered
    report = GateReport(passed=True, figures={"metric": metric, "parity": manifest.get("parity", {})})

    def fail(reason: str) -> None:
        report.passed = False
        report.reasons.append(reason)

    if not probes.query_ids:
        fail("the probe set is empty: no evidence the candidate is better")
        return report
    mine = evaluate_probes(candidate, candidate_key, probes, cache, progress)
    report.figures["candidate_probe"] = mine["metrics"]
    report.figures["candidate_probe_groups"] = mine["groups"]
    if production is not None:
        prod_key, prod_encoder = production
        theirs = evaluate_probes(prod_encoder, prod_key, probes, cache, progress)
        report.figures["production_probe"] = theirs["metrics"]
        gain = mine["metrics"][metric] - theirs["metrics"][metric]
        report.figures["gain"] = gain
        if gain < settings.min_gain:
            fail(f"probe {metric} {mine['metrics'][metric]:.4f} is not {settings.min_gain:g} above production's "
                 f"{theirs['metrics'][metric]:.4f}")
        earlier = np.flatnonzero(np.array(probes.added_at) <= promoted_at) if promoted_at is not None else []
        if len(earlier):
            old_mine = evaluate_probes(candidate, candidate_key, probes, cache, subset=earlier)["metrics"][metric]
            old_theirs = evaluate_probes(prod_encoder, prod_key, probes, cache, subset=earlier)["metrics"][metric]
            report.figures["previous_probe"] = {"queries": len(earlier), "candidate": old_mine,
                                                "production": old_theirs}
            if old_mine < old_theirs - settings.max_regression:
                fail(f"{metric} on the {len(earlier)} earlier probe queries fell from {old_theirs:.4f} to "
                     f"{old_mine:.4f} (tolerance {settings.max_regression:g})")
    if settings.sts_dataset is not None:
        mine_sts, parent_sts = sts_spearman(candidate, settings.sts_dataset), sts_spearman(parent, settings.sts_dataset)
        ratio = mine_sts / parent_sts if parent_sts > 0 else 0.0
        report.figures["sts"] = {"candidate": mine_sts, "parent": parent_sts, "ratio": ratio}
        if ratio < settings.sts_min_ratio:
            fail(f"STS Spearman {mine_sts:.4f} is below {settings.sts_min_ratio:g} x the parent's {parent_sts:.4f}")
    else:
        report.figures["sts"] = "skipped: gates.sts_dataset is not set"
    return report
