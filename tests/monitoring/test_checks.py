"""Drift and probe checks end to end on the tiny model, real SQLite files and MedQuAD texts."""

import random
import time

import numpy as np
import pytest

from embedloop.core.datasets import read_jsonl
from embedloop.core.probes import ProbeStore
from embedloop.core.querylog import QueryLogStore, RequestRecord, SampledText
from embedloop.core.settings import Privacy
from embedloop.core.versions import load_encoder, open_registry
from embedloop.monitoring.checks import run_drift_check, run_probe_check
from embedloop.monitoring.history import MonitoringStore
from tests.conftest import DATASETS, make_settings

MEDQUAD = DATASETS / "medquad"
pytestmark = pytest.mark.skipif(not MEDQUAD.is_dir(), reason="shared datasets not present")


@pytest.fixture(scope="module")
def queries_by_source():
    by_source: dict[str, list[str]] = {}
    for q in read_jsonl(MEDQUAD / "queries.jsonl"):
        by_source.setdefault(q["source"], []).append(q["text"])
    for texts in by_source.values():  # file order clusters topics; a stream arrives mixed
        random.Random(0).shuffle(texts)
    return by_source


def log_traffic(settings, texts):
    encoder = load_encoder(settings, open_registry(settings).get("v1"))
    vectors = encoder.encode(texts)
    tokens = encoder.tokenize(texts)
    records = [RequestRecord("v1", 200, 1, t.n_tokens, 1.0, [SampledText(text, t.n_tokens, v)])
               for text, t, v in zip(texts, tokens, vectors)]
    QueryLogStore(settings.querylog_url).write(records, Privacy.TEXT)
    time.sleep(0.01)


def test_drift_is_declared_after_consecutive_shifted_windows(tiny_home, queries_by_source):
    settings = make_settings(tiny_home, monitoring={"drift": {"window_size": 150, "reference_size": 400,
                                                              "consecutive": 2}})
    empty = run_drift_check(settings)
    assert empty.status == "waiting" and "0 of 150 queries logged" in empty.message
    log_traffic(settings, queries_by_source["GARD"][:400])
    first = run_drift_check(settings)  # builds the reference from traffic, then waits for new queries
    assert first.status == "waiting"
    assert MonitoringStore(settings.monitoring_url).reference("v1").origin == "traffic"

    log_traffic(settings, queries_by_source["GARD"][400:550])
    stationary = run_drift_check(settings)
    assert stationary.status == "ok" and stationary.trigger is None

    log_traffic(settings, queries_by_source["NHLBI"][:150])
    shifted = run_drift_check(settings)
    assert shifted.status == "drifted" and shifted.trigger is None  # one window is not enough
    log_traffic(settings, queries_by_source["NHLBI"][150:300])
    declared = run_drift_check(settings)
    assert declared.status == "declared" and declared.trigger == "drift"
    assert declared.figures["share_drifted"] > stationary.figures["share_drifted"]
    runs = MonitoringStore(settings.monitoring_url).drift_runs("v1")
    assert [r.declared for r in runs[:3]] == [True, False, False]


def test_probe_check_reports_groups_and_alarms_below_the_floor(tiny_home):
    settings = make_settings(tiny_home, monitoring={"probes": {"floor": 0.99}})
    store = ProbeStore(settings.monitoring_url)
    queries, docs = store.import_beir(MEDQUAD, "test", "source", limit=60)
    assert queries == 60 and docs == 15736
    small = make_settings(tiny_home)
    report = run_probe_check(settings)
    assert report.status == "alarm" and report.trigger == "probe_recall"  # a random tiny model is poor
    assert "below the floor" in report.message
    assert set(report.figures["groups"]) and sum(g["queries"] for g in report.figures["groups"].values()) == 60
    assert 0 <= report.figures["recall@10"] <= 1
    cached = list(small.corpus_cache_dir.glob("*.npy"))
    assert len(cached) == 1
    again = run_probe_check(small)  # default floor 0.8 still alarms; the corpus comes from the cache
    assert again.figures["recall@10"] == pytest.approx(report.figures["recall@10"])
    assert len(MonitoringStore(settings.monitoring_url).probe_runs("v1")) == 2


def test_reference_from_probe_queries_when_there_is_no_traffic(tiny_home):
    settings = make_settings(tiny_home, monitoring={"drift": {"window_size": 50, "reference_size": 40}})
    ProbeStore(settings.monitoring_url).import_beir(MEDQUAD, "test", "source", limit=80)
    report = run_drift_check(settings)
    reference = MonitoringStore(settings.monitoring_url).reference("v1")
    assert report.status == "waiting" and reference.origin == "probes"
    assert reference.embeddings.shape == (40, 32) and np.all(reference.lengths > 3)


def test_a_production_move_rebuilds_the_reference_from_the_traffic_after_it(tiny_home, queries_by_source):
    settings = make_settings(tiny_home, monitoring={"drift": {"window_size": 100, "reference_size": 200}})
    log_traffic(settings, queries_by_source["GARD"][:200])
    run_drift_check(settings)
    store = MonitoringStore(settings.monitoring_url)
    first = store.reference("v1")
    registry = open_registry(settings)
    registry.move_alias("production", "v1", action="rollback", reason="back to v1")  # production moved (to v1 again)
    waiting = run_drift_check(settings)
    assert waiting.status == "waiting" and "0 of 100 queries logged" in waiting.message  # no probe stand-in now
    log_traffic(settings, queries_by_source["NHLBI"][:150])
    run_drift_check(settings)
    rebuilt = store.reference("v1")
    assert rebuilt.built_at > first.built_at and rebuilt.origin == "traffic" and len(rebuilt.embeddings) == 150
