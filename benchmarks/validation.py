"""Can a small validation split still tell a trained candidate's checks apart?

    .venv/bin/python benchmarks/validation.py [--home DIR] [--version vN] [--sizes 30,60,200] [--draws 40]
        [--documents 2000]

A run chooses how long to train and how much of the fine-tuned weights to keep on its validation
split. A split of a few dozen queries can rank every answer first (MRR@10 = 1.0) early in a run:
from then on no check is better than another, early stopping ends the run, and the least-change
rule keeps the least-trained weights.

Measured on MedQuAD's test questions (which no run trains on) as validation pairs, one answer each,
against the corpus of a state folder that holds a trained candidate (by default the one
``benchmarks/compat.py`` leaves: trained on the question split's training pairs). For each split
size, ``--draws`` seeded splits are built two ways — the run's own (``ValidationSet.build``: the
answers, each query's 5 nearest documents under the parent, 300 random documents) and a harder
corpus that was tried (``--documents`` in all whatever the split's size: more of each query's
nearest documents when the split is small, then random ones) — and the candidate as it trains
(torch, ``training.max_seq_length``) and the parent are scored on each: the share of splits on which
the candidate scores 1.0 (saturated), and the mean and spread of its figure.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from common import DATASETS, REPO, save

from embedloop.core.evaluation.corpus_cache import cached_corpus_embeddings
from embedloop.core.evaluation.retrieval import evaluate, top_k
from embedloop.core.labels.beir import load_beir
from embedloop.core.labels.feedback import TrainingPair
from embedloop.core.models.versions import graph_key, load_encoder, version_dir
from embedloop.core.settings import load_settings
from embedloop.core.state import State
from embedloop.retrain.finetune import load_checkpoint
from embedloop.retrain.mining import ServedEmbeddings
from embedloop.retrain.validation import ValidationSet

METRIC = "mrr@10"


def harder(embeddings: ServedEmbeddings, pairs: list[TrainingPair], seed: int, documents: int) -> ValidationSet:
    """The tried construction: the answers, ``documents // (2 n)`` nearest documents per query
    (between 5 and 50), then random documents up to ``documents``."""
    rng = np.random.default_rng(seed)
    per_query = int(np.clip(documents // (2 * len(pairs)), 5, 50))
    near = top_k(embeddings.queries([p.query for p in pairs]), embeddings.corpus_vectors, per_query)
    corpus = list(dict.fromkeys([p.positive for p in pairs] + [embeddings.corpus[i] for i in near.ravel()]))
    chosen = set(corpus)
    rest = dict.fromkeys(t for t in (embeddings.corpus[i] for i in rng.permutation(len(embeddings.corpus)))
                         if t not in chosen)
    corpus += list(rest)[: max(0, documents - len(corpus))]
    return ValidationSet([p.query for p in pairs], corpus, [{p.positive} for p in pairs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=REPO / "benchmarks" / ".work" / "compat" / "home")
    parser.add_argument("--version", default=None, help="the trained candidate (default: the latest version)")
    parser.add_argument("--sizes", default="30,60,200")
    parser.add_argument("--draws", type=int, default=40)
    parser.add_argument("--documents", type=int, default=2000, help="size of the tried harder corpus")
    args = parser.parse_args()

    with State(load_settings(args.home)) as state:
        settings, registry, probes = state.settings, state.registry, state.probes.load()
        parent = registry.get("v1")
        candidate = registry.get(args.version or registry.versions()[-1].name)
        encoder = load_encoder(settings, parent)
        served = cached_corpus_embeddings(encoder, graph_key(parent), probes.doc_ids, probes.doc_texts,
                                          settings.corpus_cache_dir)
    embeddings = ServedEmbeddings(encoder, served, probes.doc_texts)
    test = load_beir(DATASETS / "medquad", "test")
    text_of = dict(zip(probes.doc_ids, probes.doc_texts))
    pairs = [TrainingPair(feedback_id=i, query=test.queries[q]["text"], positive=text_of[sorted(test.qrels[q])[0]],
                          negatives=[]) for i, q in enumerate(sorted(test.qrels))]

    # Both models' torch vectors of every text, once: a split is then an index into them.
    models = {"candidate": load_checkpoint(version_dir(settings, candidate) / "checkpoint"),
              "parent": load_checkpoint(version_dir(settings, parent) / "checkpoint")}
    vectors = {}
    for name, model in models.items():
        model.max_seq_length = settings.training.max_seq_length  # as the run's checks see it
        encode = lambda texts: model.encode(texts, batch_size=64, normalize_embeddings=True,  # noqa: E731
                                            convert_to_numpy=True, show_progress_bar=False)
        vectors[name] = {"docs": dict(zip(probes.doc_texts, encode(probes.doc_texts))),
                         "queries": dict(zip((p.query for p in pairs), encode([p.query for p in pairs])))}
        print(f"embedded the corpus and {len(pairs)} questions with {name}", flush=True)

    def score(name: str, split: ValidationSet) -> float:
        q = np.stack([vectors[name]["queries"][t] for t in split.queries])
        d = np.stack([vectors[name]["docs"][t] for t in split.corpus])
        return evaluate(q, d, split.corpus, split.relevant)[METRIC]

    results = {}
    for size in (int(s) for s in args.sizes.split(",")):
        builds = {"the run's (5 neighbours + 300 random)":
                  lambda chosen, draw: ValidationSet.build(embeddings, chosen, seed=draw, max_queries=size),
                  f"tried: {args.documents} documents":
                  lambda chosen, draw: harder(embeddings, chosen, draw, args.documents)}
        for label, build in builds.items():
            figures = {"candidate": [], "parent": [], "documents": []}
            for draw in range(args.draws):
                rng = np.random.default_rng(draw)
                chosen = [pairs[i] for i in rng.choice(len(pairs), size=size, replace=False)]
                split = build(chosen, draw)
                figures["documents"].append(len(split.corpus))
                for name in ("candidate", "parent"):
                    figures[name].append(score(name, split))
            row = {"documents_median": statistics.median(figures["documents"]),
                   "candidate_saturated_share": sum(f >= 1.0 for f in figures["candidate"]) / args.draws,
                   "candidate_mean": round(statistics.mean(figures["candidate"]), 4),
                   "candidate_sd": round(statistics.stdev(figures["candidate"]), 4),
                   "parent_mean": round(statistics.mean(figures["parent"]), 4),
                   "below_full_corpus_headroom": round(1 - statistics.mean(figures["candidate"]), 4)}
            results[f"{size} queries, {label}"] = row
            print(f"{size:4d} queries, {label:38s} {row}", flush=True)
    save("validation", {"home": str(args.home), "candidate": candidate.name, "draws": args.draws,
                        "validation_pairs": "MedQuAD test questions, first answer each", "splits": results})


if __name__ == "__main__":
    main()
