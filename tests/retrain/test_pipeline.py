"""The whole pipeline on the tiny model and a MedQuAD slice (fast: seconds per run)."""

import os
import signal
import sqlite3
import subprocess
import time

import pytest

from embedloop.app.retraining import retrain_and_promote
from embedloop.core.evaluation.corpus_cache import cached_corpus_embeddings
from embedloop.core.evaluation.probes import rank_probes, score_probes
from embedloop.core.models.adapters import adapters_of, load_adapter
from embedloop.core.models.registry import CANDIDATE, PRODUCTION
from embedloop.core.models.versions import graph_key, load_encoder, version_dir
from embedloop.core.settings import TrainingSettings
from embedloop.retrain.pipeline import retrain
from embedloop.retrain.validation import choose_weight
from tests.conftest import DATASETS, REPO, seed_medquad

# A random tiny model learns something in a few steps only at a high rate; one training per run,
# except where the default's two are what is tested.
FAST = {"retrain": {"min_new_pairs": 50, "validation_fraction": 0.1},
        "training": {"learning_rate": 1e-3, "epochs": 2, "compatibility_weights": [0.0]},
        "gates": {"sts_dataset": str(DATASETS / "stsb_ccbysa" / "test.jsonl")}}


def fast(**changes) -> dict:
    """FAST with some groups' settings changed, e.g. ``fast(retrain={"cooldown_s": 0})``."""
    return {group: {**FAST.get(group, {}), **changes.get(group, {})} for group in {*FAST, *changes}}


def test_a_run_registers_a_gated_candidate_and_policy_auto_promotes_it(tiny_home, open_states):
    default_weights = TrainingSettings().compatibility_weights
    state = open_states(tiny_home, **fast(retrain={"cooldown_s": 0}, promotion={"policy": "auto"},
                                          training={"compatibility_weights": default_weights}))
    seeded = seed_medquad(state, probe_queries=400)  # enough queries to confirm a gain of a few points
    result = retrain_and_promote(state, "probe_recall")
    assert result.status == "succeeded", result.message
    registry = state.registry
    version = registry.get(result.version)
    assert registry.alias(PRODUCTION) == version.name and registry.state(version.name).state == "approved"
    gates = version.metrics["gates"]
    assert gates["passed"] and gates["candidate_probe"]["mrr@10"] > gates["production_probe"]["mrr@10"] + 0.005
    assert gates["sts"]["ratio"] > 0 and gates["parity"]["mean_cosine"] > 0.985
    compat = gates["compatibility"]  # recorded, not gated, by default
    assert compat["own"]["mrr@10"] == gates["candidate_probe"]["mrr@10"]
    assert compat["older"]["mrr@10"] == gates["production_probe"]["mrr@10"]
    assert 0 < compat["cross"]["mrr@10"] != compat["own"]["mrr@10"] and "compatibility" not in {
        g["name"] for g in gates["gates"]}
    adapter = compat["adapter"]  # fitted and measured; registered only if it beats both plain figures
    beaten = max(compat["cross"]["mrr@10"], compat["older"]["mrr@10"])
    assert adapter["served"] == (adapter["cross"]["mrr@10"] > beaten) == (adapters_of(version) == ["v1"])
    assert adapter["documents"] == seeded["docs"] - len(set().union(*state.probes.load().relevant))
    if adapter["served"]:  # the registered rotation reproduces the recorded figure
        loaded = load_adapter(version_dir(state.settings, version), version, "v1")
        probes, cache = state.probes.load(), state.settings.corpus_cache_dir
        own = score_probes(load_encoder(state.settings, version), graph_key(version), probes, cache)
        v1 = registry.get("v1")
        old_docs = cached_corpus_embeddings(load_encoder(state.settings, v1), graph_key(v1), probes.doc_ids,
                                            probes.doc_texts, cache)
        cross = rank_probes(loaded.apply(own.query_vectors), old_docs, probes).summary()["metrics"]["mrr@10"]
        assert cross == pytest.approx(adapter["cross"]["mrr@10"], abs=1e-9)
    lineage = version.training
    assert version.parent == "v1" and lineage["trigger"] == "probe_recall"
    data = lineage["data"]
    assert data["new_train"] + data["new_validation"] == data["new_feedback"] == seeded["feedback"]
    assert lineage["data"]["feedback_upto"] == seeded["feedback"]
    interpolation = lineage["interpolation"]
    assert interpolation["alpha"] in [0.25, 0.5, 0.75, 1.0] and "0.0" in interpolation["validation"]
    compatibility = lineage["compatibility"]  # by default the plain objective and weight 1, chosen on validation
    tried = compatibility["tried"]
    assert list(tried) == ["0.0", "1.0"] and compatibility["keep"] == 0.99
    assert compatibility["weight"] == choose_weight({float(w): f for w, f in tried.items()}, 0.99, "mrr@10")
    chosen = tried[str(compatibility["weight"])]
    assert chosen["own"] == interpolation["validation"][str(interpolation["alpha"])]["own"]
    budget = lineage["budget"]  # 270 pairs = 9 steps an epoch: more passes to reach min_steps, capped at max_epochs
    assert budget["steps_per_epoch"] == 9 and budget["epochs"] == 8 and budget["steps"] == 72
    assert len(budget["validation_curve"]) >= 3 and budget["best_step"] in [s for s, _ in budget["validation_curve"]]
    assert lineage["settings"]["training"]["learning_rate"] == 1e-3 and "promotion" not in lineage["settings"]
    actions = [(e.action, e.actor) for e in reversed(registry.history())]
    assert actions[-3:] == [("register", "embedloop-retrain"), ("candidate", "embedloop-retrain"),
                            ("approve", "embedloop-retrain")]
    skipped = {g["name"] for g in gates["gates"] if g["status"] == "skipped"}
    assert skipped == {"earlier probes", "retention"}  # no probes before v1's promotion; no retention set here
    candidate_entry = registry.history(2)[1]
    assert candidate_entry.action == "candidate" and "skipped: earlier probes" in candidate_entry.reason
    assert state.runs.runs(1)[0].status == "succeeded"

    again = retrain(state)  # nothing new since v2 was trained
    assert again.status == "skipped" and "0 new feedback pairs" in again.message


def test_required_compatibility_is_a_gate_of_its_own(tiny_home, open_states):
    state = open_states(tiny_home, **fast(gates={"compatibility": "require", "compatibility_tolerance": 0.0}))
    seed_medquad(state, probe_queries=100)
    result = retrain(state)
    gates = state.registry.get(result.version).metrics["gates"]
    gate = next(g for g in gates["gates"] if g["name"] == "compatibility")
    compatible = gates["compatibility"]["cross"]["mrr@10"] >= gates["compatibility"]["older"]["mrr@10"]
    assert gate["status"] == ("passed" if compatible else "failed") and "production's stored vectors" in gate["detail"]


def test_a_candidate_trained_on_feedback_without_signal_is_not_promoted(tiny_home, open_states):
    state = open_states(tiny_home, **fast(promotion={"policy": "auto"}))
    seed_medquad(state, probe_queries=400, shuffled=True)
    result = retrain_and_promote(state)
    gates = state.registry.get(result.version).metrics["gates"]
    assert result.status == "rejected" and state.registry.alias(PRODUCTION) == "v1", gates["gain"]
    assert gates["gain"]["ci_low"] < 0.005 and "does not clear" in result.message


def test_a_failed_gate_rejects_the_candidate_with_its_reasons_then_cooldown(tiny_home, open_states):
    retention = DATASETS / "se_retention"
    state = open_states(tiny_home, **fast(gates={"min_gain": 1.0, "retention_dataset": str(retention)},
                                          promotion={"policy": "auto"}))
    seed_medquad(state)
    result = retrain_and_promote(state)
    gates = state.registry.get(result.version).metrics["gates"]
    assert gates["retention"]["queries"] == 752 and gates["retention"]["ratio"] > 0
    assert {g["name"]: g["status"] for g in gates["gates"]}["retention"] in ("passed", "failed")
    assert result.status == "rejected" and "does not clear 1 on 60 queries" in result.message
    registry = state.registry
    assert registry.alias(PRODUCTION) == "v1" and registry.alias(CANDIDATE) is None
    row = registry.state(result.version)
    assert row.state == "rejected" and "does not clear 1" in row.reasons[0]
    assert registry.get(result.version).metrics["gates"]["passed"] is False
    assert retrain(state).status == "skipped"  # cooldown (default one hour)
    assert retrain(state, dry_run=True).status == "dry-run"


def test_too_few_new_pairs_is_said_plainly(tiny_home, open_states):
    state = open_states(tiny_home, **fast(retrain={"min_new_pairs": 10_000}))
    seed_medquad(state, train_queries=50)
    result = retrain(state)
    assert result.status == "skipped" and "A run needs 10000 new pairs" in result.message
    assert state.runs.runs() == []


def phase_of(home):
    try:
        with sqlite3.connect(home / "monitoring.db") as db:
            row = db.execute("select phase from retrain_runs order by id desc limit 1").fetchone()
        return row[0] if row else None
    except sqlite3.OperationalError:
        return None


@pytest.mark.parametrize("kill_at", ["mining", "training", "exporting", "gating"])
def test_kill_9_leaves_the_registry_consistent_and_the_next_start_cleans_up(tiny_home, kill_at, open_states):
    state = open_states(tiny_home)
    settings = state.settings
    seed_medquad(state)
    env = {**os.environ, "EMBEDLOOP_TRAINING__LEARNING_RATE": "1e-3", "EMBEDLOOP_TRAINING__EPOCHS": "1",
           "EMBEDLOOP_TRAINING__MIN_STEPS": "0", "EMBEDLOOP_TRAINING__EVALUATIONS": "2",
           "EMBEDLOOP_RETRAIN__MIN_NEW_PAIRS": "50"}
    proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "embedloop"), "retrain", "--home", str(tiny_home)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while phase_of(tiny_home) != kill_at and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before {kill_at}"
    assert phase_of(tiny_home) == kill_at, f"the run did not reach {kill_at} in time"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    registry = state.registry
    assert [v.name for v in registry.versions()] == ["v1"] and registry.alias(PRODUCTION) == "v1"
    versions = sorted(p.name for p in settings.models_dir.iterdir() if not p.name.startswith("."))
    assert versions == ["v1"]  # publish comes after the gates
    # The next start (here one that then finds too few pairs) takes over the dead run's lease at
    # once, records the run as failed and removes what it left.
    result = retrain(open_states(tiny_home, retrain={"min_new_pairs": 10_000}))
    assert result.status == "skipped"
    run = state.runs.runs()[0]
    assert run.status == "failed" and "interrupted" in run.message and run.phase == kill_at
    assert not any(settings.staging_dir.iterdir()) and not settings.runs_dir.exists()
