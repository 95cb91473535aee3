"""The drift check end to end on the tiny model, real SQLite files and MedQuAD texts."""

import random
import time

import numpy as np
import pytest

from embedloop.core.history.querylog import RequestRecord, SampledText
from embedloop.core.labels.beir import read_jsonl
from embedloop.core.models.registry import PRODUCTION, Action
from embedloop.core.models.versions import load_encoder
from embedloop.core.settings import Privacy
from embedloop.monitoring.drift_check import DriftCheck
from embedloop.monitoring.report import CheckStatus
from tests.conftest import DATASETS

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


def log_traffic(state, texts, key=None):
    encoder = load_encoder(state.settings, state.registry.get("v1"))
    vectors = encoder.encode(texts)
    tokens = encoder.tokenize(texts)
    records = [RequestRecord("v1", 200, 1, t.n_tokens, 1.0, [SampledText(text, t.n_tokens, v)], key=key)
               for text, t, v in zip(texts, tokens, vectors)]
    state.querylog.write(records, Privacy.TEXT)
    time.sleep(0.01)


def test_drift_is_declared_after_consecutive_shifted_windows(tiny_home, queries_by_source, open_states):
    state = open_states(tiny_home, drift={"window_size": 150, "reference_size": 400, "consecutive": 2})
    check = DriftCheck(state)
    empty = check()
    assert empty.status is CheckStatus.WAITING and "0 of 150 queries logged" in empty.message
    log_traffic(state, queries_by_source["GARD"][:400])
    first = check()  # builds the reference from traffic, then waits for new queries
    assert first.status is CheckStatus.WAITING
    assert state.checks.reference("v1").origin == "traffic"

    log_traffic(state, queries_by_source["GARD"][400:550], key="search")
    stationary = check()
    assert stationary.status is CheckStatus.OK and stationary.trigger is None
    assert stationary.figures["window_by_key"] == {"search": 1.0}

    log_traffic(state, queries_by_source["NHLBI"][:100], key="new-client")
    log_traffic(state, queries_by_source["GARD"][550:600], key="search")
    shifted = check()
    assert shifted.figures["window_by_key"] == {"new-client": 0.6667, "search": 0.3333}  # who moved it
    assert shifted.status is CheckStatus.DRIFTED and shifted.trigger is None  # one window is not enough
    log_traffic(state, queries_by_source["NHLBI"][150:300])
    declared = check()
    assert declared.status is CheckStatus.DECLARED and declared.trigger == "drift"
    assert "of dimensions drifted" in declared.message and "2 drifted window(s) in a row" in declared.message
    assert declared.figures["share_drifted"] > stationary.figures["share_drifted"]
    runs = state.checks.drift_runs("v1")
    assert [r.declared for r in runs[:3]] == [True, False, False]


def test_reference_from_probe_queries_when_there_is_no_traffic(tiny_home, open_states):
    state = open_states(tiny_home, drift={"window_size": 50, "reference_size": 40})
    state.probes.import_beir(MEDQUAD, "test", "source", limit=80)
    report = DriftCheck(state)()
    reference = state.checks.reference("v1")
    assert report.status is CheckStatus.WAITING and reference.origin == "probes"
    assert reference.embeddings.shape == (40, 32) and np.all(reference.lengths > 3)


def test_a_production_move_rebuilds_the_reference_from_the_traffic_after_it(tiny_home, queries_by_source,
                                                                            open_states):
    state = open_states(tiny_home, drift={"window_size": 100, "reference_size": 200})
    check = DriftCheck(state)
    log_traffic(state, queries_by_source["GARD"][:200])
    check()
    store = state.checks
    first = store.reference("v1")
    state.registry.move_alias(PRODUCTION, "v1", action=Action.ROLLBACK, reason="back to v1")  # moved (to v1 again)
    waiting = check()
    assert waiting.status is CheckStatus.WAITING and "0 of 100 queries logged" in waiting.message  # no probe stand-in
    log_traffic(state, queries_by_source["NHLBI"][:150])
    check()
    rebuilt = store.reference("v1")
    assert rebuilt.built_at > first.built_at and rebuilt.origin == "traffic" and len(rebuilt.embeddings) == 150
