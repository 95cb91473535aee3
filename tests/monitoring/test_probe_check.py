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
    again = ProbeCheck(open_states(tiny_home))()  # no floor by default: the same figure is not an alarm
    assert again.status is CheckStatus.OK and again.figures["mrr@10"] == pytest.approx(report.figures["mrr@10"])
    assert len(state.checks.probe_runs("v1")) == 2 and len(list(state.settings.corpus_cache_dir.glob("*.npy"))) == 1


def test_the_first_check_sets_the_baseline_and_a_drop_from_it_alarms(tiny_home, open_states):
    state = open_states(tiny_home)
    state.probes.import_beir(MEDQUAD, "test", "source", limit=40)
    first = ProbeCheck(state)()
    assert first.status is CheckStatus.OK and first.figures["baseline_mrr@10"] is None  # never alarms on itself
    assert ProbeCheck(state)().status is CheckStatus.OK  # the same figure again

    other = open_states(tiny_home, storage={"monitoring_url": f"sqlite:///{tiny_home / 'other.db'}"})
    other.probes.import_beir(MEDQUAD, "test", "source", limit=40)
    other.checks.add_probe_run("v1", {"mrr@10": first.figures["mrr@10"] + 0.2}, {}, None)  # a better first check
    dropped = ProbeCheck(other)()
    assert dropped.status is CheckStatus.ALARM and "dropped more than 0.0500" in dropped.message


def test_an_empty_probe_set_is_skipped(tiny_home, open_states):
    state = open_states(tiny_home, probes={"floor": 0.99})
    assert ProbeCheck(state)().status is CheckStatus.SKIPPED


def test_alarm_below_the_floor_or_after_a_drop():
    assert probe_alarm(0.7, None, floor=0.8, max_drop=0.05) == "mrr@10 0.7000 is below the floor 0.8000"
    assert probe_alarm(0.1, None, floor=None, max_drop=0.05) is None
    assert "dropped more than" in probe_alarm(0.85, 0.95, floor=0.8, max_drop=0.05, metric="mrr@10")
    assert probe_alarm(0.92, 0.95, floor=0.8, max_drop=0.05) is None
