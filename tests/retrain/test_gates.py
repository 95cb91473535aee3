"""The gates' decisions on hand-made per-query scores (no model needed)."""

import numpy as np

from embedloop.core.evaluation.probes import ProbeScores
from embedloop.core.labels.probes import ProbeSet
from embedloop.core.settings import GateSettings
from embedloop.retrain.gates import GateReport, Gates, GateStatus


def scores(values: np.ndarray, groups: list[str], origins: list[str], added_at: list[float]) -> ProbeScores:
    n = len(values)
    probes = ProbeSet(doc_ids=["d"], doc_texts=["t"], query_ids=[f"q{i}" for i in range(n)],
                      query_texts=["q"] * n, groups=groups, origins=origins, relevant=[{"d"}] * n,
                      added_at=added_at)
    return ProbeScores(probes, {"mrr@10": values}, [["d"]] * n)


def run(candidate, production, groups, origins, added_at, promoted_at=None, **settings) -> GateReport:
    gates = Gates(GateSettings(resamples=999, **settings), cache_dir=None)
    report = GateReport("mrr@10")
    gates.probe_gates(report, scores(candidate, groups, origins, added_at),
                      scores(production, groups, origins, added_at), promoted_at)
    return report


def status(report: GateReport, name: str) -> GateStatus:
    return next(g.status for g in report.gates if g.name == name)


def test_a_gain_paid_for_by_one_group_is_refused():
    rng = np.random.default_rng(0)
    production = np.concatenate([rng.choice([0.5, 1 / 3, 0.0], size=200), rng.choice([1.0, 0.5], size=100)])
    candidate = production.copy()
    candidate[:200] = np.where(rng.random(200) < 0.7, 1.0, production[:200])  # GARD and GHR gain a lot …
    candidate[200:] = production[200:] * 0.6  # … NIDDK (100 queries) loses
    groups = ["GARD"] * 100 + ["GHR"] * 100 + ["NIDDK"] * 100
    report = run(candidate, production, groups, ["import"] * 300, [0.0] * 300)
    assert status(report, "probe gain") is GateStatus.PASSED
    assert status(report, "groups") is GateStatus.FAILED and "NIDDK" in report.reasons[0]
    assert not report.passed


def test_small_groups_are_shown_not_gated_and_missing_evidence_is_skipped_not_passed():
    rng = np.random.default_rng(1)
    production = rng.choice([1.0, 0.5, 0.0], size=120, p=[0.3, 0.4, 0.3])
    candidate = np.where(rng.random(120) < 0.6, 1.0, production)
    candidate[:10] = 0.0  # a small group collapses
    groups = ["tiny"] * 10 + ["big"] * 110
    origins = ["import"] * 100 + ["feedback"] * 20
    report = run(candidate, production, groups, origins, [5.0] * 120, promoted_at=1.0)
    assert status(report, "earlier probes") is GateStatus.SKIPPED  # every probe came after the promotion
    assert report.figures["probe_groups"]["tiny"]["decided"] is False
    assert status(report, "groups") is GateStatus.PASSED and status(report, "origins") is GateStatus.PASSED
    assert report.figures["probe_origins"]["feedback"]["decided"] is False  # 20 < 30 queries
    assert report.passed and report.skipped == ["earlier probes: no probe queries existed when production was "
                                                "promoted"]


def test_the_probes_production_was_promoted_on_must_not_confidently_fall():
    rng = np.random.default_rng(2)
    production = rng.choice([1.0, 0.5, 0.0], size=400, p=[0.6, 0.3, 0.1])
    candidate = production.copy()
    candidate[200:] = np.minimum(1.0, production[200:] + 0.5)  # new probes: much better
    candidate[:200] = production[:200] * 0.8  # the old ones: worse
    added_at = [1.0] * 200 + [9.0] * 200
    report = run(candidate, production, ["g"] * 400, ["import"] * 400, added_at, promoted_at=5.0)
    assert status(report, "probe gain") is GateStatus.PASSED
    assert status(report, "earlier probes") is GateStatus.FAILED
    assert report.figures["previous_probe"]["queries"] == 200
