"""Screening each key's feedback against the parent before a run trains on it.

A key that teaches a consistent wrong mapping sends pairs whose answer the parent ranks nowhere
near the question: honest feedback on a domain the parent already half knows puts the answer in
the parent's top hundred almost always (and the pairs that do not are the valuable hard cases, so
single pairs are never dropped). When more than ``retrain.max_implausible_share`` of one key's new
pairs are that far off, the run leaves out all of that key's new pairs and says so; a person can
look, and purge the key or raise the threshold.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from embedloop.core.labels.feedback import TrainingPair
from embedloop.core.settings import RetrainSettings
from embedloop.retrain.mining import ServedEmbeddings

CHUNK = 512  # queries scored against the corpus at once: bounds the score matrix


@dataclass
class Screening:
    implausible: dict[str, int]  # per key: new pairs whose answer is outside the parent's top N
    left_out: dict[str, int]  # per key: new pairs left out because too many of its pairs were

    def summary(self, rank: int) -> dict:
        return {"plausible_rank": rank, "implausible_by_key": self.implausible, "left_out_by_key": self.left_out}


def answer_ranks(embeddings: ServedEmbeddings, pairs: list[TrainingPair]) -> np.ndarray:
    """The parent's rank (0 = first) of each pair's answer among the corpus, for the pair's query."""
    ranks = np.empty(len(pairs), dtype=np.int64)
    for start in range(0, len(pairs), CHUNK):
        chunk = pairs[start:start + CHUNK]
        queries = embeddings.queries([p.query for p in chunk])
        answers = embeddings.documents([p.positive for p in chunk])
        own = np.einsum("ij,ij->i", queries, answers)
        scores = queries @ embeddings.corpus_vectors.T
        ranks[start:start + len(chunk)] = (scores > own[:, None] + 1e-6).sum(axis=1)
    return ranks


def screen(embeddings: ServedEmbeddings, train: list[TrainingPair], after_id: int,
           settings: RetrainSettings) -> Screening:
    """Which keys' new pairs (id > ``after_id``) to leave out: those whose answers the parent mostly
    does not rank within ``retrain.plausible_rank``."""
    keyed = [p for p in train if p.key is not None and p.feedback_id > after_id]
    if settings.plausible_rank <= 0 or not keyed:
        return Screening({}, {})
    far = answer_ranks(embeddings, keyed) >= settings.plausible_rank
    sent = Counter(p.key for p in keyed)
    implausible = Counter(p.key for p, off in zip(keyed, far) if off)
    suspect = {k for k, n in implausible.items() if n > settings.max_implausible_share * sent[k]}
    return Screening(dict(implausible), {k: sent[k] for k in suspect})
