"""Retrieval metrics (recall@k, MRR@10, nDCG@10) of embedding rankings, per query and averaged;
shared by probes, gates and benchmarks."""

from __future__ import annotations

import numpy as np

DEPTH = 10  # MRR and nDCG are cut at 10


def top_k(queries: np.ndarray, corpus: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """Indices of the ``k`` most similar corpus rows (dot product) per query, best first."""
    k = min(k, corpus.shape[0])
    out = np.empty((queries.shape[0], k), dtype=np.int64)
    for start in range(0, queries.shape[0], chunk):
        scores = queries[start : start + chunk] @ corpus.T
        part = np.argpartition(-scores, kth=k - 1, axis=1)[:, :k]
        order = np.take_along_axis(scores, part, axis=1).argsort(axis=1)[:, ::-1]
        out[start : start + chunk] = np.take_along_axis(part, order, axis=1)
    return out


def rank(query_vecs: np.ndarray, doc_vecs: np.ndarray, doc_ids: list[str], depth: int = DEPTH) -> list[list[str]]:
    """The ``depth`` best document ids per query."""
    return [[doc_ids[j] for j in row] for row in top_k(query_vecs, doc_vecs, depth)]


def per_query_metrics(ranked: list[list[str]], relevant: list[set[str]],
                      ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, np.ndarray]:
    """recall@k for each k, MRR@10 and nDCG@10 (binary relevance), one value per query."""
    recall = {k: np.empty(len(ranked)) for k in ks}
    mrr, ndcg = np.empty(len(ranked)), np.empty(len(ranked))
    for i, (docs, rel) in enumerate(zip(ranked, relevant)):
        for k in ks:
            recall[k][i] = len(rel.intersection(docs[:k])) / len(rel)
        first = next((r for r, d in enumerate(docs[:DEPTH]) if d in rel), None)
        mrr[i] = 0.0 if first is None else 1.0 / (first + 1)
        dcg = sum(1.0 / np.log2(r + 2) for r, d in enumerate(docs[:DEPTH]) if d in rel)
        ideal = sum(1.0 / np.log2(r + 2) for r in range(min(len(rel), DEPTH)))
        ndcg[i] = dcg / ideal
    return {**{f"recall@{k}": v for k, v in recall.items()}, "mrr@10": mrr, "ndcg@10": ndcg}


def retrieval_metrics(ranked: list[list[str]], relevant: list[set[str]],
                      ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """The per-query metrics averaged over queries."""
    return {name: float(values.mean()) for name, values in per_query_metrics(ranked, relevant, ks).items()}


def evaluate(query_vecs: np.ndarray, doc_vecs: np.ndarray, doc_ids: list[str],
             relevant: list[set[str]], ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    return retrieval_metrics(rank(query_vecs, doc_vecs, doc_ids, max(max(ks), DEPTH)), relevant, ks)
