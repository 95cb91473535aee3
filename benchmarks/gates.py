"""Do the gates tell a gain from noise, and does a small feedback batch train?

    .venv/bin/python benchmarks/gates.py [--seeds 5] [--pairs 1200] [--work DIR] [--analyse-only]

Set-up, on MedQuAD: the base model is measured per source on the test questions; the two sources it
ranks worst (with enough training questions) give ~``--pairs`` feedback pairs. Probes: all 2,777
test questions, grouped by source; corpus: all 15,736 answers. Runs go through the command line as
a user's would (`embedloop retrain --force`, policy manual, so production stays the base model).

(1) Small data: the run with the default settings (seed 42) — its MRR@10 gain on the two sources'
    test questions, which no run sees, and every group's change; and its gate verdict.
(2) Noise: ``--seeds`` runs on the same data that differ only by their seed, judged against each
    other with the gates' probe decisions (gain, groups, origins) as if one were production: every
    ordered pair is a no-signal comparison, and a pass is a false pass. The point-estimate rule the
    gates used before is counted beside it.
(3) Calibration: ``--simulated`` no-signal candidates drawn from the default run's own per-query
    differences, centred on zero (a bootstrap draw of the 2,777 differences minus their mean: the
    real spread, no true gain), judged by the gain gate at ``min_gain`` and at 0 (the test's size).

``--confirm`` asks of the saved no-signal comparisons whether each difference holds on questions no
probe holds and no run trained on — MedQuAD's training questions of the sources outside the feedback,
against the same answers — so that a pass can be read as a real difference between two models, or as
the probe set's luck. ``--analyse-only`` judges the versions an earlier (possibly interrupted) run of
this benchmark left in ``--work``, without training more; ``--add-seeds N`` trains N more re-seeded runs there first (on
the same feedback), with ``--weights`` as their ``training.compatibility_weights`` when given — e.g.
the one weight the default run's validation chose, which trains once instead of once per weight.
Results in ``benchmarks/results/gates.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
from common import DATASETS, REPO, RESULTS, save

from embedloop.core.evaluation.paired import compare
from embedloop.core.evaluation.probes import score_probes
from embedloop.core.labels.beir import load_beir
from embedloop.core.labels.feedback import FeedbackItem
from embedloop.core.labels.probes import ProbeSet
from embedloop.core.models.registry import PRODUCTION
from embedloop.core.models.versions import graph_key, load_encoder
from embedloop.core.settings import load_settings
from embedloop.core.state import State
from embedloop.retrain.gates import GateReport, Gates, GateStatus

MEDQUAD = DATASETS / "medquad"
CLI = str(REPO / ".venv" / "bin" / "embedloop")
CONFIG = {"promotion": {"policy": "manual"}, "probes": {"feedback_fraction": 0.0},
          "gates": {"sts_dataset": str(DATASETS / "stsb_ccbysa" / "test.jsonl"),
                    "retention_dataset": str(DATASETS / "se_retention")}}


def prepare(home: Path, pairs: int) -> tuple[State, dict]:
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "config.yaml").write_text(json.dumps(CONFIG))
    subprocess.run([CLI, "init", "--home", str(home)], check=True)
    subprocess.run([CLI, "probe", "import", str(MEDQUAD), "--split", "test", "--home", str(home)], check=True)
    state = State(load_settings(home))
    base = scores_of(state, "v1")
    per_group = base.summary()["groups"]
    train = load_beir(MEDQUAD, "train")
    available = {g: [(q, d) for q in sorted(train.qrels) if train.queries[q]["source"] == g for d in train.qrels[q]]
                 for g in per_group}
    weakest = sorted((g for g in per_group if len(available[g]) >= pairs // 4), key=lambda g: per_group[g]["mrr@10"])
    chosen = weakest[:2]
    pool = [p for g in chosen for p in available[g]]
    sample = random.Random(0).sample(pool, min(pairs, len(pool)))
    state.feedback.add([FeedbackItem(query=train.queries[q]["text"], positive_id=d, group=train.queries[q]["source"])
                        for q, d in sample], origin="import", probe_fraction=0.0)
    return state, {"sources": chosen, "pairs": len(sample),
                   "base_mrr10_by_source": {g: round(m["mrr@10"], 4) for g, m in per_group.items()}}


def scores_of(state: State, name: str):
    version = state.registry.get(name)
    return score_probes(load_encoder(state.settings, version), graph_key(version), state.probes.load(),
                        state.settings.corpus_cache_dir)


def run_seed(home: Path, seed: int, weights: list[float] | None = None) -> dict:
    started = time.perf_counter()
    env = {**os.environ, "EMBEDLOOP_TRAINING__SEED": str(seed)}
    if weights is not None:
        env["EMBEDLOOP_TRAINING__COMPATIBILITY_WEIGHTS"] = json.dumps(weights)
    done = subprocess.run([CLI, "retrain", "--force", "--home", str(home)], capture_output=True, text=True, env=env)
    print(done.stdout[-1500:], done.stderr[-1500:], flush=True)
    return {"seed": seed, "minutes": round((time.perf_counter() - started) / 60, 1), "exit": done.returncode,
            "compatibility_weights": weights if weights is not None else "default"}


def change_by_group(candidate, baseline, metric: str) -> dict[str, float]:  # noqa: ANN001 - ProbeScores
    """Each probe group's mean ``metric``, candidate − baseline."""
    after, before = candidate.summary()["groups"], baseline.summary()["groups"]
    return {group: round(after[group][metric] - before[group][metric], 4) for group in after}


def judged(gates: Gates, candidate, production) -> GateReport:
    report = GateReport(gates.settings.metric)
    gates.probe_gates(report, candidate, production, promoted_at=None)
    return report


def confirm(state: State, setup: dict, result: dict) -> dict:
    """Each no-signal comparison again, on the unseen training questions of the other sources."""
    probes = state.probes.load()
    train = load_beir(MEDQUAD, "train")
    known = set(probes.doc_ids)
    ids = sorted(q for q in train.qrels if q in train.queries and train.queries[q]["source"] not in setup["sources"]
                 and set(train.qrels[q]) & known)
    unseen = ProbeSet(doc_ids=probes.doc_ids, doc_texts=probes.doc_texts, query_ids=ids,  # the cached answers
                      query_texts=[train.queries[q]["text"] for q in ids],
                      groups=[train.queries[q]["source"] for q in ids], origins=["import"] * len(ids),
                      relevant=[set(train.qrels[q]) & known for q in ids], added_at=[0.0] * len(ids))
    settings = state.settings.gates
    per_query = {}
    for name in sorted({p[k] for p in result["noise"]["pairs"] for k in ("candidate", "against")}):
        version = state.registry.get(name)
        per_query[name] = score_probes(load_encoder(state.settings, version), graph_key(version), unseen,
                                       state.settings.corpus_cache_dir).per_query[settings.metric]
    rows = []
    for pair in result["noise"]["pairs"]:
        held = compare(per_query[pair["candidate"]], per_query[pair["against"]], settings.min_gain,
                       settings.confidence, settings.resamples)
        rows.append({"candidate": pair["candidate"], "against": pair["against"], "probe_mean_gain": pair["mean_gain"],
                     "probe_passed": pair["passed"], "unseen_mean_gain": round(held.mean, 4),
                     "unseen_ci": [round(held.ci_low, 4), round(held.ci_high, 4)], "unseen_clears": held.clears})
        print(json.dumps(rows[-1]), flush=True)
    agree = np.corrcoef([r["probe_mean_gain"] for r in rows], [r["unseen_mean_gain"] for r in rows])[0, 1]
    passes = [r for r in rows if r["probe_passed"]]
    return {"queries": len(ids), "sources": sorted(set(unseen.groups)), "pairs": rows,
            "probe_vs_unseen_gain_correlation": round(float(agree), 3),
            "passes_that_hold": sum(r["unseen_ci"][0] > 0 for r in passes), "passes": len(passes)}


def simulate_no_signal(differences: np.ndarray, settings, n: int) -> dict:  # noqa: ANN001 - GateSettings
    rng = np.random.default_rng(7)
    null = differences - differences.mean()
    passes = {"min_gain": 0, "zero": 0, "point_estimate": 0}
    for i in range(n):
        draw = null[rng.integers(0, null.size, null.size)]
        passes["point_estimate"] += draw.mean() >= settings.min_gain
        zero = np.zeros_like(draw)
        passes["min_gain"] += compare(draw, zero, settings.min_gain, settings.confidence, settings.resamples, i).clears
        passes["zero"] += compare(draw, zero, 0.0, settings.confidence, settings.resamples, i).clears
    return {"candidates": n, "queries": int(null.size), "spread": round(float(differences.std(ddof=1)), 4),
            "pass_rate_at_min_gain": passes["min_gain"] / n, "pass_rate_at_zero": passes["zero"] / n,
            "point_estimate_rule_pass_rate": passes["point_estimate"] / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="runs that differ only by seed (>= 2)")
    parser.add_argument("--pairs", type=int, default=1200)
    parser.add_argument("--work", type=Path, default=REPO / "benchmarks" / ".work" / "gates")
    parser.add_argument("--analyse-only", action="store_true", help="judge the versions already in --work")
    parser.add_argument("--confirm", action="store_true", help="re-judge the saved no-signal comparisons on "
                        "unseen questions (needs --work of the saved run)")
    parser.add_argument("--add-seeds", type=int, default=0, help="with --analyse-only: train this many more "
                        "re-seeded runs in --work first")
    parser.add_argument("--weights", type=float, nargs="+", help="training.compatibility_weights of the runs "
                        "this invocation trains (default: the settings')")
    parser.add_argument("--simulated", type=int, default=200, help="simulated no-signal candidates")
    args = parser.parse_args()
    home = args.work / "home"
    setup_file = args.work / "setup.json"
    if args.confirm:
        state, setup = State(load_settings(home)), json.loads(setup_file.read_text())
        result = json.loads((RESULTS / "gates.json").read_text())
        result["noise"]["confirmation"] = confirmation = confirm(state, setup, result)
        print(f"confirmation: {({k: v for k, v in confirmation.items() if k != 'pairs'})}")
        (RESULTS / "gates.json").write_text(json.dumps(result, indent=2))
        return
    if args.analyse_only:
        state, setup = State(load_settings(home)), json.loads(setup_file.read_text())
        runs = setup.pop("runs", [])
        for seed in range(1000 + len(runs) - 1, 1000 + len(runs) - 1 + args.add_seeds):
            runs.append(run_seed(home, seed, args.weights))
            setup_file.write_text(json.dumps({**setup, "runs": runs}))
    else:
        state, setup = prepare(home, args.pairs)
        setup_file.write_text(json.dumps(setup))
        print(f"feedback: {setup}", flush=True)
        runs = []
        for seed in [42] + [1000 + i for i in range(args.seeds - 1)]:
            runs.append(run_seed(home, seed, args.weights))
            setup_file.write_text(json.dumps({**setup, "runs": runs}))
    versions = [v.name for v in state.registry.versions()[1:]]
    assert state.registry.alias(PRODUCTION) == "v1"
    scores = {name: scores_of(state, name) for name in ["v1", *versions]}
    gates = Gates(state.settings.gates, state.settings.corpus_cache_dir)
    metric = gates.settings.metric

    # (1) the default run against the base model
    first, base = scores[versions[0]], scores["v1"]
    groups = np.array(first.probes.groups)
    held = np.flatnonzero(np.isin(groups, setup["sources"]))
    gain = compare(first.per_query[metric][held], base.per_query[metric][held], 0.0)
    changes = change_by_group(first, base, metric)
    registered = state.registry.get(versions[0])
    small = {"version": versions[0], "state": state.registry.state(versions[0]).state,
             "gain_on_the_two_sources": gain.as_dict(), "change_by_group": changes,
             "largest_group_drop": min(changes.values()),
             "gates": [{k: g[k] for k in ("name", "status", "detail")} for g in registered.metrics["gates"]["gates"]],
             "budget": registered.training.get("budget"), "alpha": registered.training["interpolation"]["alpha"]}
    print(json.dumps(small, indent=1), flush=True)

    # (2) no-signal comparisons: every ordered pair of re-seeded candidates
    pairs, old_rule = [], 0
    for a, b in itertools.permutations(versions, 2):
        report = judged(gates, scores[a], scores[b])
        point = float(scores[a].per_query[metric].mean() - scores[b].per_query[metric].mean())
        old_rule += point >= gates.settings.min_gain
        pairs.append({"candidate": a, "against": b, "passed": report.passed, "mean_gain": round(point, 4),
                      "lower_bound": round(report.figures["gain"]["ci_low"], 4),
                      "failed": [g.name for g in report.gates if g.status is GateStatus.FAILED]})
    false_passes = sum(p["passed"] for p in pairs)
    noise = {"comparisons": len(pairs), "false_passes": false_passes,
             "false_pass_rate": false_passes / len(pairs) if pairs else None,
             "point_estimate_rule_passes": old_rule, "pairs": pairs}
    print(f"noise: {false_passes} of {len(pairs)} no-signal comparisons passed the gates "
          f"(the point-estimate rule: {old_rule})", flush=True)
    calibration = simulate_no_signal(first.per_query[metric] - base.per_query[metric], gates.settings,
                                     args.simulated)
    print(f"calibration: {calibration}", flush=True)
    targets = {"noise_false_pass_rate<=0.05": noise["false_pass_rate"] <= 0.05 if pairs else None,
               "small_data_gain>=0.03": gain.mean >= 0.03,
               "small_data_no_group_down_more_than_0.01": small["largest_group_drop"] >= -0.01}
    print(f"targets: {targets}")
    save("gates", {"setup": setup, "runs": runs, "small_data": small, "noise": noise, "calibration": calibration,
                   "settings": {"gates": state.settings.gates.model_dump(mode="json"),
                                "training": state.settings.training.model_dump(mode="json")},
                   "targets_met": targets})


if __name__ == "__main__":
    main()
