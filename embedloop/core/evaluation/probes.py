"""Retrieval quality of an encoder exactly as served, on the probe set: overall and per group.

Shared by the probe check (monitoring) and the promotion gates (retrain), like a
sentence-transformers evaluator: give it an encoder, get a dict of metrics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embedloop.core.evaluation.corpus_cache import cached_corpus_embeddings
from embedloop.core.evaluation.retrieval import evaluate
from embedloop.core.labels.probes import ProbeSet
from embedloop.core.models.encoder import OnnxEncoder
from embedloop.core.progress import Progress, no_progress


class EmptyProbeSet(ValueError):
    def __init__(self) -> None:
        super().__init__("the probe set is empty: import one with `embedloop probe import`")


def evaluate_probes(encoder: OnnxEncoder, model_key: str, probes: ProbeSet, cache_dir: Path,
                    progress: Progress = no_progress, subset: np.ndarray | None = None) -> dict:
    """``{"metrics": {recall@k, mrr@10, ndcg@10, queries, documents}, "groups": {group: {…}}}``;
    ``subset`` limits the queries (indices)."""
    if not probes.query_ids:
        raise EmptyProbeSet()
    docs = cached_corpus_embeddings(encoder, model_key, probes.doc_ids, probes.doc_texts, cache_dir, progress)
    idx_all = np.arange(len(probes.query_ids)) if subset is None else np.asarray(subset)
    queries = encoder.encode([probes.query_texts[i] for i in idx_all])
    relevant = [probes.relevant[i] for i in idx_all]
    overall = evaluate(queries, docs, probes.doc_ids, relevant)
    groups, labels = {}, np.array([probes.groups[i] for i in idx_all])
    for group in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == group)
        m = evaluate(queries[idx], docs, probes.doc_ids, [relevant[i] for i in idx])
        groups[group] = {**m, "queries": int(idx.size)}
    return {"metrics": {**overall, "queries": int(idx_all.size), "documents": len(probes.doc_ids)},
            "groups": groups}
