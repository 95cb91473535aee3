"""The demo's data: which groups the traffic comes from before and after each shift, the corpus,
the query pools.

The split is measured, not chosen by hand: the base model ranks a sample of each group's test
questions against the demo corpus; the easiest groups are the traffic before the first shift, the
hardest after it, and the ones in between arrive with the second shift. The probe floor sits
halfway between the MRR@10 of the first two.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from embedloop.core.evaluation.corpus_cache import cached_corpus_embeddings
from embedloop.core.evaluation.retrieval import evaluate
from embedloop.core.labels.beir import BeirDataset, load_beir
from embedloop.core.models.encoder import OnnxEncoder


@dataclass
class Query:
    text: str
    group: str
    positives: list[str]


@dataclass
class Scenario:
    before: list[str]
    after: list[str]
    later: list[str]  # the second shift's groups
    corpus: dict[str, str]
    probes: list[tuple[str, str, str, list[str]]]  # (id, text, group, relevant ids): the "before" test queries
    pools: dict[str, list[Query]]  # traffic per phase, with the answers feedback will name
    pilot: dict[str, float] = field(default_factory=dict)  # MRR@10 of the base model per chosen group
    floor: float = 0.0
    questions: list[tuple[str, list[str]]] = field(default_factory=list)  # the index client's: (text, relevant ids)


@dataclass(frozen=True)
class Size:
    groups: int  # per side of the shift
    train_per_group: int
    test_per_group: int
    extra_docs: int


QUICK = Size(groups=2, train_per_group=250, test_per_group=30, extra_docs=200)
FULL = Size(groups=3, train_per_group=800, test_per_group=80, extra_docs=2000)


def pick_queries(data: BeirDataset, group_field: str, per_group: int, seed: int) -> dict[str, list[str]]:
    by_group: dict[str, list[str]] = {}
    for qid in sorted(data.qrels):
        group = data.queries[qid].get(group_field)
        if group is not None:
            by_group.setdefault(str(group), []).append(qid)
    rng = random.Random(seed)
    return {g: rng.sample(ids, min(per_group, len(ids))) for g, ids in by_group.items()}


def build_scenario(dataset: Path, group_field: str, size: Size, base: OnnxEncoder, base_key: str,
                   cache_dir: Path, seed: int = 0) -> Scenario:
    train, test = load_beir(dataset, "train"), load_beir(dataset, "test")
    train_ids = pick_queries(train, group_field, size.train_per_group, seed)
    test_ids = pick_queries(test, group_field, size.test_per_group, seed)
    groups = sorted(g for g in train_ids if len(train_ids[g]) >= 100 and len(test_ids.get(g, [])) >= 10)
    if len(groups) < 3:
        raise ValueError(f"{dataset} needs at least three {group_field!r} groups with 100 training and 10 test "
                         "questions each")
    rng = random.Random(seed)
    test_docs = {d for g in groups for q in test_ids[g] for d in test.qrels[q]}
    extra = set(rng.sample(sorted(set(train.corpus) - test_docs), min(size.extra_docs, len(train.corpus))))

    def per_group_mrr(corpus: dict[str, str], names: list[str], key: str) -> dict[str, float]:
        doc_ids, texts = list(corpus), list(corpus.values())
        vectors = cached_corpus_embeddings(base, key, doc_ids, texts, cache_dir)
        result = {}
        for g in names:
            queries = base.encode([test.queries[q]["text"] for q in test_ids[g]])
            result[g] = evaluate(queries, vectors, doc_ids, [set(test.qrels[q]) for q in test_ids[g]])["mrr@10"]
        return result

    # Choose the halves on a pilot corpus of every group's test answers, then measure again on the
    # demo corpus (which adds the training answers of the chosen groups) for the floor.
    pilot = per_group_mrr({d: train.corpus[d] for d in sorted(test_docs | extra)}, groups, "pilot")
    ranked = sorted(groups, key=lambda g: -pilot[g])
    n = min(size.groups, len(ranked) // 3)
    before, later, after = ranked[:n], ranked[-2 * n : -n], ranked[-n:]
    chosen = before + after + later
    docs = {d for g in chosen for q in train_ids[g] + test_ids[g]
            for d in (train.qrels.get(q) or test.qrels.get(q) or {})}
    corpus = {d: train.corpus[d] for d in sorted(docs | extra)}
    measured = per_group_mrr(corpus, chosen, base_key)  # cached under the base graph: the probe check reuses it
    pools = {side: [Query(train.queries[q]["text"], g, sorted(train.qrels[q])) for g in names for q in train_ids[g]]
             for side, names in (("before", before), ("after", after), ("later", later))}
    probes = [(q, test.queries[q]["text"], g, sorted(test.qrels[q])) for g in before for q in test_ids[g]]
    # the stored-index client asks what the traffic after the first shift asks: the first update's subject
    questions = [(test.queries[q]["text"], sorted(test.qrels[q])) for g in after for q in test_ids[g]]
    floor = float((np.mean([measured[g] for g in before]) + np.mean([measured[g] for g in after])) / 2)
    return Scenario(before, after, later, corpus, probes, pools, measured, floor, questions)
