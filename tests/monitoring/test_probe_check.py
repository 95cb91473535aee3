"""The probe check end to end on the tiny model and MedQuAD's test questions."""

import pytest

from embedloop.monitoring.probe_check import ProbeCheck, probe_alarm
from embedloop.monitoring.report import CheckStatus
from tests.conftest import DATASETS

MEDQUAD = DATASETS / "medquad"
pytestmark = pytest.mark.skipif(not MEDQUAD.is_dir(), reason="shared datasets not present")


def test_probe_check_reports_groups_and_alarms_below_the_floor(tiny_home, open_states):
    state = open_states(tiny_home, probes={"floor": 0.99})
    queries, docs = state.probes.import_beir(MEDQUAD, "test", "source", limit=60)
    assert queries == 60 and docs == 15736
    report = ProbeCheck(state)()
    assert report.status is CheckStatus.ALARM and report.trigger == "probe_recall"  # a random tiny model is poor
    assert "below the floor" in report.message
    assert set(report.figures["groups"]) and sum(g["queries"] for g in report.figures["groups"].values()) == 60
    assert 0 <= report.figures["recall@10"] <= 1
    assert len(list(state.settings.corpus_cache_dir.glob("*.npy"))) == 1
    again = ProbeCheck(open_states(tiny_home))()  # default floor 0.8 still alarms; the corpus comes from the cache
    assert again.figures["recall@10"] == pytest.approx(report.figures["recall@10"])
    assert len(state.checks.probe_runs("v1")) == 2


def test_an_empty_probe_set_is_skipped(tiny_home, open_states):
    state = open_states(tiny_home, probes={"floor": 0.99})
    assert ProbeCheck(state)().status is CheckStatus.SKIPPED


def test_alarm_below_the_floor_or_after_a_drop():
    assert probe_alarm(0.7, None, floor=0.8, max_drop=0.05) == "recall@10 0.7000 is below the floor 0.8000"
    assert "dropped more than" in probe_alarm(0.85, 0.95, floor=0.8, max_drop=0.05, metric="mrr@10")
    assert probe_alarm(0.92, 0.95, floor=0.8, max_drop=0.05) is None
