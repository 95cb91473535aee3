"""Stored vectors across an update: what a client that keeps its index gets, with and without the
backward-compatible objective, on MedQuAD, int8 as served.

    .venv/bin/python benchmarks/compat.py [--weights 0,0.3,1] [--pairs N] [--work DIR] [--resume]

Feedback = the question split's training pairs (all of them, or a seeded sample of whole questions
adding up to about ``--pairs``), probes = its 2,777 test questions against all 15,736 answers. One
`embedloop retrain` run from the base model per weight, default settings otherwise (policy manual,
so every run trains from the base and is measured against it). Each run's gates already measure
what is reported: the candidate's own MRR@10 (its queries against its own vectors), the base's own,
and the cross figure (the candidate's queries against the base's stored vectors). Also reported: the
validation figures each run recorded, and the weight the validation rule
(``training.compatibility_keep``) would choose among them — to compare with the test set's verdict.
And each candidate's query adapter as the gates fit and the service serves it (``embedloop@v2~v1``: a
rotation into the base's space, orthogonal Procrustes, fitted on the answers no test question points
to): what a client that keeps its index gets by querying through it.
And what each candidate keeps outside the domain: MRR@10 on ``se_retention`` and STS-B Spearman
against the base's, judged by the retention and STS gates themselves.
(``--resume`` keeps the state folder and the results of an earlier invocation and runs only the
weights it has not measured; every run's adapter and retention figures are measured where missing.)

Targets (issue: deliver each update to clients who store vectors): with the objective, cross MRR@10
>= base + half of the candidate's own gain; the candidate's own MRR@10 >= 0.99 x the run without it.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import time
from pathlib import Path

from common import DATASETS, REPO, RESULTS, save

from embedloop.core.evaluation.compatibility import fit_query_adapter
from embedloop.core.evaluation.corpus_cache import cached_corpus_embeddings
from embedloop.core.evaluation.probes import score_probes
from embedloop.core.labels.beir import load_beir
from embedloop.core.labels.feedback import FeedbackItem
from embedloop.core.labels.probes import ProbeQuery
from embedloop.core.models.versions import graph_key, load_encoder
from embedloop.core.settings import TrainingSettings, load_settings
from embedloop.core.state import State
from embedloop.retrain.gates import GateReport, Gates, ServedGraph
from embedloop.retrain.validation import choose_weight

MEDQUAD = DATASETS / "medquad"
CLI = str(REPO / ".venv" / "bin" / "embedloop")
METRIC = "mrr@10"


def prepare(home: Path, pairs: int | None) -> dict:
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    subprocess.run([CLI, "init", "--home", str(home)], check=True)
    subprocess.run([CLI, "corpus", "import", str(MEDQUAD), "--home", str(home)], check=True)
    train, test = load_beir(MEDQUAD, "train"), load_beir(MEDQUAD, "test")
    questions = sorted(train.qrels)
    if pairs is not None:  # whole questions, seeded, until the pairs add up
        random.Random(0).shuffle(questions)
        kept, total = [], 0
        for q in questions:
            if total >= pairs:
                break
            kept.append(q)
            total += len(train.qrels[q])
        questions = sorted(kept)
    with State(load_settings(home)) as state:
        items = [FeedbackItem(query=train.queries[q]["text"], positive_id=d, group=train.queries[q]["source"])
                 for q in questions for d in train.qrels[q]]
        added = state.feedback.add(items, origin="import", probe_fraction=0.0).accepted
        state.probes.add([ProbeQuery(q, test.queries[q]["text"], test.queries[q]["source"], tuple(test.qrels[q]))
                          for q in sorted(test.qrels)])
    return {"questions": len(questions), "pairs": added, "probe_questions": len(test.qrels)}


def run_weight(home: Path, weight: float) -> dict:
    config = {"probes": {"feedback_fraction": 0.0}, "training": {"compatibility_weights": [weight]}}
    (home / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
    started = time.perf_counter()
    subprocess.run([CLI, "retrain", "--force", "--home", str(home)], check=True)
    minutes = (time.perf_counter() - started) / 60
    with State(load_settings(home)) as state:
        run = state.runs.runs(1)[0]
        version = state.registry.get(run.version)
    gates, lineage = version.metrics["gates"], version.training
    compatibility = gates["compatibility"]
    status = str(getattr(run.status, "value", run.status))
    return {"version": version.name, "status": status, "minutes": round(minutes, 1),
            "own": gates["candidate_probe"][METRIC], "base": gates["production_probe"][METRIC],
            "cross": compatibility["cross"][METRIC], "cross_recall@10": compatibility["cross"]["recall@10"],
            "own_recall@10": gates["candidate_probe"]["recall@10"], "kept_gain": compatibility.get("kept_gain"),
            "alpha": lineage["interpolation"]["alpha"], "steps": lineage["budget"]["steps_run"],
            "validation": lineage["compatibility"]["tried"][str(float(weight))],
            "seconds": run.details.get("seconds")}


def adapter(home: Path, name: str, base: str = "v1") -> dict:
    """Cross figures of the candidate's queries through the query adapter the gates fit and serve
    (:func:`fit_query_adapter`: a rotation into the base's space, fitted on the documents no test
    question points to)."""
    with State(load_settings(home)) as state:
        settings, probes = state.settings, state.probes.load()
        vectors, encoders = {}, {}
        for version in (base, name):  # cached by the gates: nothing is embedded again
            v = state.registry.get(version)
            encoders[version] = load_encoder(settings, v)
            vectors[version] = cached_corpus_embeddings(encoders[version], graph_key(v), probes.doc_ids,
                                                        probes.doc_texts, settings.corpus_cache_dir)
        own = score_probes(encoders[name], graph_key(state.registry.get(name)), probes, settings.corpus_cache_dir)
    fitted = fit_query_adapter(own, vectors[name], vectors[base])
    return {"documents": fitted.documents, "cross": fitted.cross.summary()["metrics"]}


def retention(home: Path, name: str, base: str = "v1") -> dict:
    """What the candidate keeps outside the domain, judged by the STS and retention gates themselves
    (the runs here leave their datasets unset): STS-B Spearman and MRR@10 on ``se_retention``."""
    with State(load_settings(home)) as state:
        settings = state.settings.gates.model_copy(update={"sts_dataset": DATASETS / "stsb_ccbysa" / "test.jsonl",
                                                           "retention_dataset": DATASETS / "se_retention"})
        graphs = {v: ServedGraph(graph_key(state.registry.get(v)), load_encoder(state.settings, state.registry.get(v)))
                  for v in (base, name)}
        gates = Gates(settings, state.settings.corpus_cache_dir)
    report = GateReport(settings.metric)
    gates.sts_gate(report, graphs[name], graphs[base])
    gates.retention_gate(report, graphs[name], graphs[base])
    sts, kept = report.figures["sts"], report.figures["retention"]
    return {"se_retention_ratio": round(kept["ratio"], 4), "sts_ratio": round(sts["ratio"], 4),
            "candidate": {"se_retention": kept["candidate"], "sts": sts["candidate"]},
            "base": {"se_retention": kept["baseline"], "sts": sts["parent"]}}


def checks(runs: dict[str, dict], keep: float) -> dict:
    plain = runs.get("0.0")
    out = {}
    for weight, r in runs.items():
        gain = r["own"] - r["base"]
        out[weight] = {"own": round(r["own"], 4), "cross": round(r["cross"], 4), "base": round(r["base"], 4),
                       "cross_with_adapter": round(r["adapter"]["cross"][METRIC], 4) if "adapter" in r else None,
                       "share_of_gain_kept": round((r["cross"] - r["base"]) / gain, 3) if gain > 0 else None,
                       "share_with_adapter": round((r["adapter"]["cross"][METRIC] - r["base"]) / gain, 3)
                       if gain > 0 and "adapter" in r else None,
                       "cross_target_met": r["cross"] >= r["base"] + gain / 2,
                       "se_retention_ratio": r.get("retention", {}).get("se_retention_ratio"),
                       "sts_ratio": r.get("retention", {}).get("sts_ratio")}
        if plain is not None and weight != "0.0":
            out[weight]["own_vs_plain"] = round(r["own"] / plain["own"], 4)
            out[weight]["own_target_met"] = r["own"] >= 0.99 * plain["own"]
    validation = {float(w): r["validation"] for w, r in runs.items()}
    out["validation_would_choose"] = choose_weight(validation, keep, METRIC)
    out["test_best_cross_keeping_own"] = choose_weight(
        {float(w): {"own": {METRIC: r["own"]}, "cross": {METRIC: r["cross"]}} for w, r in runs.items()}, keep, METRIC)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="0,0.3,1", help="comma-separated compatibility weights, one run each")
    parser.add_argument("--pairs", type=int, default=None, help="train on a seeded sample of about N pairs")
    parser.add_argument("--work", type=Path, default=REPO / "benchmarks" / ".work" / "compat")
    parser.add_argument("--resume", action="store_true", help="continue an earlier invocation's state and results")
    args = parser.parse_args()
    home = args.work / "home"
    keep = TrainingSettings().compatibility_keep
    if args.resume:
        earlier = json.loads((RESULTS / "compat.json").read_text())
        result = {k: v for k, v in earlier.items() if k not in ("benchmark", "when", "machine")}
    else:
        result = {"data": prepare(home, args.pairs), "runs": {}}
    for weight in (float(w) for w in args.weights.split(",")):
        if str(weight) not in result["runs"]:
            result["runs"][str(weight)] = run_weight(home, weight)
        run = result["runs"][str(weight)]
        if "documents" not in run.get("adapter", {}):  # (earlier invocations fitted on a random sample)
            run["adapter"] = adapter(home, run["version"])
        if "retention" not in run:
            run["retention"] = retention(home, run["version"])
        result["checks"] = checks(result["runs"], keep)
        save("compat", result)  # after each run: a long benchmark keeps what it measured
    print(json.dumps(result["checks"], indent=2))


if __name__ == "__main__":
    main()
