"""Feedback poisoning on MedQuAD: what the per-key share cap and the gates do against one key that
teaches a consistent wrong mapping, next to honest feedback from another key.

    .venv/bin/python benchmarks/poisoning.py [--scenarios honest,poison-screening] [--work DIR]

Four MedQuAD sources (NINDS, NIDDK, CancerGov, MPlusHealthTopics): their answers are the corpus,
their test questions the probe set (imported: what the approver trusts). Key ``clinic`` sends
honest pairs from the train split; key ``mallory`` sends other train questions, each paired with an
answer to a question from another source — the same wrong mapping every time, the worst case. The
feedback is written through the store the HTTP route uses (keyed probe split, key recorded). Each
scenario is one ``embedloop retrain --force`` from the base model, policy manual, default gates,
with the defences switched on or off: the per-key share cap (``retrain.max_key_share``) and the
screening of each key's pairs against the parent (``retrain.plausible_rank``).
Reported per scenario: the run's verdict and reasons, the pairs trained on per key, and the
candidate's MRR@10 on the imported probe questions (int8 as served) against the base model's and the
honest-only candidate's. Target: with the defences on, the run is rejected or its candidate is
within 0.01 MRR@10 of the honest-only candidate.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
from common import DATASETS, REPO, RESULTS, base_home, save

from embedloop.core.evaluation.probes import score_probes
from embedloop.core.labels.beir import load_beir
from embedloop.core.labels.feedback import FeedbackItem
from embedloop.core.labels.probes import ProbeQuery
from embedloop.core.models.versions import graph_key, load_encoder
from embedloop.core.settings import load_settings
from embedloop.core.state import State

MEDQUAD = DATASETS / "medquad"
SOURCES = ("NINDS", "NIDDK", "CancerGov", "MPlusHealthTopics")
CLI = str(REPO / ".venv" / "bin" / "embedloop")
HONEST, POISON = 800, 300
RESULT = RESULTS / "poisoning.json"
SCENARIOS = {  # name -> (mallory sends?, retrain.max_key_share, retrain.plausible_rank)
    "honest": (False, 1.0, 100),
    "poison-no-defence": (True, 1.0, 0),
    "poison-cap-only": (True, 0.5, 0),
    "poison-screening": (True, 1.0, 100),  # the defaults
}


def prepare_base(home: Path) -> None:
    """A state folder with the base model, the four sources' answers and their test questions as probes."""
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    base_home(home)
    train, test = load_beir(MEDQUAD, "train"), load_beir(MEDQUAD, "test")
    relevant = {d for data in (train, test) for q, docs in data.qrels.items()
                if data.queries[q]["source"] in SOURCES for d in docs}
    with State(load_settings(home)) as state:
        state.feedback.probe_secret  # noqa: B018 - create the installation's secret here: every scenario
        # copies this folder, so all of them split feedback between probes and training alike
        state.corpus.add({d: train.corpus[d] for d in sorted(relevant)})
        state.probes.add([ProbeQuery(q, test.queries[q]["text"], test.queries[q]["source"], tuple(test.qrels[q]))
                          for q in sorted(test.qrels) if test.queries[q]["source"] in SOURCES])


def feedback_items() -> tuple[list[FeedbackItem], list[FeedbackItem]]:
    data = load_beir(MEDQUAD, "train")
    by_source = {s: sorted(q for q in data.qrels if data.queries[q]["source"] == s) for s in SOURCES}
    rng = random.Random(7)
    pool = [q for s in SOURCES for q in by_source[s]]
    rng.shuffle(pool)
    honest_ids, poison_ids = pool[:HONEST], pool[HONEST:HONEST + POISON]
    honest = [FeedbackItem(query=data.queries[q]["text"], positive_id=sorted(data.qrels[q])[0],
                           group=data.queries[q]["source"]) for q in honest_ids]
    poison = []
    for q in poison_ids:  # the answer to the question at the same position in the next source's list
        source = data.queries[q]["source"]
        other = by_source[SOURCES[(SOURCES.index(source) + 1) % len(SOURCES)]]
        wrong = other[by_source[source].index(q) % len(other)]
        poison.append(FeedbackItem(query=data.queries[q]["text"], positive_id=sorted(data.qrels[wrong])[0],
                                   group=source))
    return honest, poison


def clean_mrr(state: State, name: str) -> dict:
    """MRR@10 of a version on the imported probe questions only (feedback may have added poisoned ones)."""
    version, probes = state.registry.get(name), state.probes.load()
    imported = np.array([i for i, origin in enumerate(probes.origins) if origin == "import"])
    scores = score_probes(load_encoder(state.settings, version), graph_key(version), probes,
                          state.settings.corpus_cache_dir)
    return {"mrr@10": scores.summary(imported)["metrics"]["mrr@10"], "queries": int(imported.size)}


def run_scenario(base: Path, work: Path, name: str) -> dict:
    poisoned, share, rank = SCENARIOS[name]
    home = work / name
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(base, home)
    (home / "config.yaml").write_text(json.dumps({"retrain": {"max_key_share": share, "plausible_rank": rank,
                                                                 "min_new_pairs": 100}}))
    honest, poison = feedback_items()
    with State(load_settings(home)) as state:
        sent = {"clinic": state.feedback.add(honest, origin="api", probe_fraction=0.1, key="clinic").__dict__}
        if poisoned:
            sent["mallory"] = state.feedback.add(poison, origin="api", probe_fraction=0.1, key="mallory").__dict__
    started = time.perf_counter()
    subprocess.run([CLI, "retrain", "--force", "--home", str(home)], check=False)
    wall = time.perf_counter() - started
    with State(load_settings(home)) as state:
        run = state.runs.runs(1)[0]
        version = run.version
        data = (run.details or {}).get("data", {})
        out = {"max_key_share": share, "plausible_rank": rank, "sent": sent, "status": run.status,
               "message": run.message, "version": version, "trained_by_source": data.get("by_source"),
               "capped_by_key_share": data.get("capped_by_key_share"), "screening": data.get("screening"),
               "wall_s": round(wall, 1),
               "base": clean_mrr(state, "v1")}
        if version:
            out["candidate"] = clean_mrr(state, version)
            gates = state.registry.get(version).metrics.get("gates", {})
            out["gate_gain"] = gates.get("gain")
    print(json.dumps({k: v for k, v in out.items() if k != "sent"}, indent=1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--work", type=Path, default=Path("/tmp/embedloop-poisoning"))
    parser.add_argument("--keep", action="store_true", help="keep the saved results of scenarios not run now")
    args = parser.parse_args()
    base = args.work / "base"
    if not (base / "registry.db").exists() or not args.keep:
        prepare_base(base)
    # Scenarios are saved as they finish, beside those of earlier invocations (each with its commit).
    results = json.loads(RESULT.read_text())["scenarios"] if args.keep and RESULT.exists() else {}
    for name in args.scenarios.split(","):
        results[name] = {**run_scenario(base, args.work, name), "commit": commit()}
        compare(results)
        save("poisoning", {"sources": SOURCES, "honest_pairs": HONEST, "poison_pairs": POISON,
                           "scenarios": results})


def compare(results: dict) -> None:
    """Each poisoned scenario against the honest one: the target is a rejected run or a candidate
    within 0.01 MRR@10 of the honest candidate."""
    if not results.get("honest", {}).get("candidate"):
        return
    reference = results["honest"]["candidate"]["mrr@10"]
    for name, result in results.items():
        if name != "honest":
            got = result.get("candidate", {}).get("mrr@10")
            result["vs_honest"] = None if got is None else round(got - reference, 4)
            result["target_met"] = result["status"] == "rejected" or abs(result["vs_honest"]) <= 0.01


def commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                          text=True).stdout.strip()


if __name__ == "__main__":
    main()
