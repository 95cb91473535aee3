"""Retrieval quality of an encoder exactly as served, on the probe set: per query, overall and per
group. Shared by the probe check (monitoring) and the promotion gates (retrain), like a
sentence-transformers evaluator: give it an encoder, get the scores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedloop.core.evaluation.corpus_cache import cached_corpus_embeddings
from embedloop.core.evaluation.retrieval import per_query_metrics, rank
from embedloop.core.labels.probes import ProbeSet
from embedloop.core.models.encoder import OnnxEncoder
from embedloop.core.progress import Progress, no_progress


class EmptyProbeSet(ValueError):
    def __init__(self) -> None:
        super().__init__("the probe set is empty: import one with `embedloop probe import`")


@dataclass
class ProbeScores:
    """Every probe query's metrics and top-10 documents, in the probe set's order."""

    probes: ProbeSet
    per_query: dict[str, np.ndarray]  # metric -> one value per query
    ranked: list[list[str]]  # the ten best document ids per query
    query_vectors: np.ndarray | None = None  # the queries as embedded (to rank them against another corpus)

    def summary(self, subset: np.ndarray | None = None) -> dict:
        """``{"metrics": {recall@k, mrr@10, ndcg@10, queries, documents}, "groups": {group: {…}}}``."""
        idx = np.arange(len(self.ranked)) if subset is None else np.asarray(subset, dtype=np.int64)
        groups = np.array(self.probes.groups)[idx] if len(idx) else np.array([])
        by_group = {}
        for group in sorted(set(groups.tolist())):
            members = idx[groups == group]
            by_group[group] = {**self.means(members), "queries": int(members.size)}
        return {"metrics": {**self.means(idx), "queries": int(idx.size), "documents": len(self.probes.doc_ids)},
                "groups": by_group}

    def means(self, idx: np.ndarray) -> dict[str, float]:
        return {name: float(values[idx].mean()) if len(idx) else 0.0 for name, values in self.per_query.items()}


def score_probes(encoder: OnnxEncoder, model_key: str, probes: ProbeSet, cache_dir: Path,
                 progress: Progress = no_progress) -> ProbeScores:
    """Embed the probe queries (and the corpus, once per graph: cached) and rank."""
    if not probes.query_ids:
        raise EmptyProbeSet()
    docs = cached_corpus_embeddings(encoder, model_key, probes.doc_ids, probes.doc_texts, cache_dir, progress)
    return rank_probes(encoder.encode(probes.query_texts), docs, probes)


def rank_probes(query_vectors: np.ndarray, doc_vectors: np.ndarray, probes: ProbeSet) -> ProbeScores:
    """The probe queries' vectors ranked against the corpus's, and scored."""
    ranked = rank(query_vectors, doc_vectors, probes.doc_ids)
    return ProbeScores(probes, per_query_metrics(ranked, probes.relevant), ranked, query_vectors)


def evaluate_probes(encoder: OnnxEncoder, model_key: str, probes: ProbeSet, cache_dir: Path,
                    progress: Progress = no_progress) -> dict:
    """Overall and per-group metrics (see :meth:`ProbeScores.summary`)."""
    return score_probes(encoder, model_key, probes, cache_dir, progress).summary()
