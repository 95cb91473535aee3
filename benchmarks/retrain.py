"""The retraining pipeline on MedQuAD, run through the real command line, evaluated as served.

    .venv/bin/python benchmarks/retrain.py [--setups 1,3] [--work DIR]

Set-up 1 (question split): feedback = qrels/train.tsv, probes = qrels/test.tsv; one
`embedloop retrain` run (mining, training, interpolation, export, gates, with the STS and the
se_retention gates). Reports base vs tuned recall@1/5/10, MRR@10, nDCG@10 of the int8 graph against
the full corpus, the same on the unseen-topic test queries (their `focus` never occurs in a training
query), the fp32 ONNX graph of the tuned model (int8/fp32 recall@10), STS Spearman on
stsb_ccbysa/test.jsonl, MRR@10 on se_retention (general-domain retrieval, never trained on), the
training budget and interpolation chosen, wall time and peak RSS of the run. Set-up 3 (incremental):
two batches split by `source`, the second trained from the first's version; MRR@10 on the first
batch's sources after each. Set-up 2 is part of 1.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import time
from pathlib import Path

from common import DATASETS, REPO, RESULTS, save

from embedloop.core.evaluation.probes import score_probes
from embedloop.core.evaluation.sts import sts_spearman
from embedloop.core.labels.beir import load_beir
from embedloop.core.labels.feedback import FeedbackItem
from embedloop.core.labels.probes import ProbeQuery, probe_set_of
from embedloop.core.models.registry import PRODUCTION
from embedloop.core.models.versions import graph_key, load_encoder
from embedloop.core.settings import load_settings
from embedloop.core.state import State

MEDQUAD = DATASETS / "medquad"
STS = DATASETS / "stsb_ccbysa" / "test.jsonl"
BATCH_A = ("CancerGov", "NIDDK", "NINDS", "CDC")
BATCH_B = ("MPlusHealthTopics", "NHLBI", "NIHSeniorHealth")
CLI = str(REPO / ".venv" / "bin" / "embedloop")


# The run as a user would configure it: policy auto, STS retention gate, no probes taken from feedback.
RETENTION = DATASETS / "se_retention"
CONFIG = {"promotion": {"policy": "auto"}, "probes": {"feedback_fraction": 0.0},
          "gates": {"sts_dataset": str(STS), "retention_dataset": str(RETENTION)}}


def prepare(home: Path, train_sources=None, test_sources=None) -> State:
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "config.yaml").write_text(json.dumps(CONFIG))  # JSON is YAML
    subprocess.run([CLI, "init", "--home", str(home)], check=True)
    subprocess.run([CLI, "corpus", "import", str(MEDQUAD), "--home", str(home)], check=True)
    state = State(load_settings(home))
    add_feedback(state, train_sources)
    add_probes(state, test_sources)
    return state


def add_feedback(state: State, sources=None) -> int:
    data = load_beir(MEDQUAD, "train")
    items = [FeedbackItem(query=data.queries[q]["text"], positive_id=d, group=data.queries[q]["source"])
             for q in sorted(data.qrels) if sources is None or data.queries[q]["source"] in sources
             for d in data.qrels[q]]
    return state.feedback.add(items, origin="import", probe_fraction=0.0).accepted


def add_probes(state: State, sources=None) -> None:
    data = load_beir(MEDQUAD, "test")
    ids = [q for q in sorted(data.qrels) if sources is None or data.queries[q]["source"] in sources]
    state.probes.add([ProbeQuery(q, data.queries[q]["text"], data.queries[q]["source"], tuple(data.qrels[q]))
                      for q in ids])


def run_retrain(home: Path) -> dict:
    started = time.perf_counter()
    subprocess.run([CLI, "retrain", "--force", "--home", str(home)], check=False)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
    return {"wall_minutes": round(wall / 60, 2), "peak_rss_mb_so_far": round(peak, 1)}


def evaluate_version(state: State, name: str, subset=None, fp32: bool = False) -> dict:
    settings, version, probes = state.settings, state.registry.get(name), state.probes.load()
    result = {}
    graphs = ("int8", "fp32") if fp32 else ("int8",)
    for graph in graphs:
        encoder = load_encoder(settings, version, graph)
        key = graph_key(version) + ("" if graph == "int8" else "-fp32")
        result[graph] = score_probes(encoder, key, probes, settings.corpus_cache_dir).summary(subset)["metrics"]
        if graph == "int8" and subset is None:
            result["sts_spearman"] = sts_spearman(encoder, STS)
            retention = score_probes(encoder, key, probe_set_of(RETENTION), settings.corpus_cache_dir).summary()
            result["retention"] = {**retention["metrics"], "groups": retention["groups"]}
    return result


def unseen_subset(state: State):
    train, test = load_beir(MEDQUAD, "train"), load_beir(MEDQUAD, "test")
    seen = {train.queries[q].get("focus") for q in train.qrels}
    probes = state.probes.load()
    return [i for i, q in enumerate(probes.query_ids) if test.queries[q].get("focus") not in seen]


def setup_question_split(work: Path) -> dict:
    home = work / "question-split"
    state = prepare(home)
    run = run_retrain(home)
    registry, runs = state.registry, state.runs.runs(1)
    tuned = runs[0].version
    unseen = unseen_subset(state)
    out = {"run": {**run, "status": runs[0].status, "message": runs[0].message, "details": runs[0].details},
           "production_after": registry.alias(PRODUCTION),
           "base": evaluate_version(state, "v1"), "tuned": evaluate_version(state, tuned, fp32=True),
           "unseen_topics": {"queries": len(unseen), "base": evaluate_version(state, "v1", unseen)["int8"],
                             "tuned": evaluate_version(state, tuned, unseen)["int8"]}}
    t = out["tuned"]
    out["checks"] = {
        "mrr10_int8": t["int8"]["mrr@10"], "target_mrr10": 0.95,
        "sts_ratio": t["sts_spearman"] / out["base"]["sts_spearman"],
        "retention_mrr10_ratio": t["retention"]["mrr@10"] / out["base"]["retention"]["mrr@10"],
        "int8_vs_fp32_recall10": t["int8"]["recall@10"] / t["fp32"]["recall@10"],
        "unseen_mrr10": out["unseen_topics"]["tuned"]["mrr@10"], "unseen_reference_mrr10": 0.983,
        "wall_minutes": run["wall_minutes"],
    }
    return out


def setup_incremental(work: Path) -> dict:
    home = work / "incremental"
    state = prepare(home, BATCH_A, BATCH_A)
    first = run_retrain(home)
    registry = state.registry
    after_first = registry.alias(PRODUCTION)
    a_ids = set(state.probes.load().query_ids)
    add_feedback(state, BATCH_B)
    add_probes(state, BATCH_B)
    second = run_retrain(home)
    after_second = registry.alias(PRODUCTION)
    probes = state.probes.load()
    a_subset = [i for i, q in enumerate(probes.query_ids) if q in a_ids]
    b_subset = [i for i, q in enumerate(probes.query_ids) if q not in a_ids]
    figures = {name: {"a": evaluate_version(state, name, a_subset)["int8"],
                      "b": evaluate_version(state, name, b_subset)["int8"]}
               for name in dict.fromkeys(["v1", after_first, after_second])}
    return {"batch_a": BATCH_A, "batch_b": BATCH_B, "runs": [first, second],
            "production_after_first": after_first, "production_after_second": after_second, "figures": figures,
            "a_mrr10_change": figures[after_second]["a"]["mrr@10"] - figures[after_first]["a"]["mrr@10"],
            "sts": {name: sts_spearman(load_encoder(state.settings, registry.get(name)), STS) for name in figures}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setups", default="1,3", help="comma-separated: 1 (includes 2), 3")
    parser.add_argument("--work", type=Path, default=REPO / "benchmarks" / ".work" / "retrain")
    args = parser.parse_args()
    previous = RESULTS / "retrain.json"  # keep the set-ups not run this time
    results: dict = {k: v for k, v in json.loads(previous.read_text()).items()
                     if k in ("question_split", "incremental")} if previous.is_file() else {}
    for setup in args.setups.split(","):
        if setup.strip() == "1":
            results["question_split"] = setup_question_split(args.work)
        elif setup.strip() == "3":
            results["incremental"] = setup_incremental(args.work)
        save("retrain", results)  # after each set-up: a long run keeps what it measured
    print(json.dumps({k: v.get("checks", v.get("a_mrr10_change")) for k, v in results.items()},
                                   indent=2, default=str))


if __name__ == "__main__":
    main()
