import numpy as np

from embedloop.core.history.checks import CheckStore
from embedloop.core.history.runs import RunStatus, RunStore
from embedloop.core.history.triggers import TriggerStatus, TriggerStore


def test_references_and_check_runs_round_trip(engine):
    store = CheckStore(engine)
    vectors = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    store.save_reference("v1", vectors, np.array([3, 4, 5, 6, 7]), "traffic")
    reference = store.reference("v1")
    assert reference.origin == "traffic" and np.allclose(reference.embeddings, vectors, atol=1e-2)
    assert store.reference("v2") is None
    store.add_drift_run("v1", 10.0, True, False, {"share_drifted": np.float64(0.25)})
    store.add_drift_run("v1", 20.0, True, True, {"share_drifted": 0.5})
    assert [r.declared for r in store.drift_runs("v1")] == [True, False]
    store.add_probe_run("v1", {"mrr@10": 0.7}, {"GARD": {"mrr@10": 0.8}}, None)
    assert store.probe_runs("v1")[0].groups == {"GARD": {"mrr@10": 0.8}}


def test_triggers_record_what_became_of_them(engine):
    store = TriggerStore(engine)
    assert store.last_acted_at() is None
    first = store.add("drift", "v1", {"share": 0.4}, TriggerStatus.OPEN)
    store.add("probe_recall", "v1", {}, TriggerStatus.SUPPRESSED, "cooldown")
    store.set_status(first, TriggerStatus.HANDLED, "run started")
    rows = store.recent()
    assert [(r.reason, r.status) for r in rows] == [("probe_recall", "suppressed"), ("drift", "handled")]
    assert store.last_acted_at() == rows[1].at  # a suppressed trigger does not restart the cooldown


def test_runs_record_phases_results_and_interruptions(engine):
    store = RunStore(engine)
    done = store.start("drift", "v1")
    store.phase(done, "training")
    store.finish(done, RunStatus.SUCCEEDED, "v2 is a candidate", "v2", {"seconds": {"total": 3.0}})
    killed = store.start("manual", "v2")
    assert store.fail_interrupted() == [killed]
    latest, earlier = store.runs()
    assert (latest.status, earlier.status, earlier.phase, earlier.version) == ("failed", "succeeded", "training", "v2")
    assert store.last_ended_at() == earlier.finished_at  # a failed run does not start the cooldown
