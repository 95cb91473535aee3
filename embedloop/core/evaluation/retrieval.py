"""Retrieval metrics (recall@k, MRR@k, nDCG@k) of embedding rankings; shared by probes, gates and benchmarks."""

from __future__ import annotations

import numpy as np


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


def retrieval_metrics(
    ranked: list[list[str]], relevant: list[set[str]], ks: tuple[int, ...] = (1, 5, 10)
) -> dict[str, float]:
    """recall@k for each k, MRR@10 and nDCG@10 (binary relevance), averaged over queries."""
    recall = {k: [] for k in ks}
    mrr, ndcg = [], []
    for docs, rel in zip(ranked, relevant):
        for k in ks:
            recall[k].append(len(rel.intersection(docs[:k])) / len(rel))
        rank = next((i for i, d in enumerate(docs[:10]) if d in rel), None)
        mrr.append(0.0 if rank is None else 1.0 / (rank + 1))
        dcg = sum(1.0 / np.log2(i + 2) for i, d in enumerate(docs[:10]) if d in rel)
        ideal = sum(1.0 / np.log2(i + 2) for i in range(min(len(rel), 10)))
        ndcg.append(dcg / ideal)
    result = {f"recall@{k}": float(np.mean(v)) for k, v in recall.items()}
    result["mrr@10"] = float(np.mean(mrr))
    result["ndcg@10"] = float(np.mean(ndcg))
    return result


def evaluate(query_vecs: np.ndarray, doc_vecs: np.ndarray, doc_ids: list[str],
             relevant: list[set[str]], ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    idx = top_k(query_vecs, doc_vecs, max(max(ks), 10))
    ranked = [[doc_ids[j] for j in row] for row in idx]
    return retrieval_metrics(ranked, relevant, ks)
