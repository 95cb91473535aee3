"""Hard negatives, mined with the parent version as it is served (its int8 graph).

``sentence_transformers.util.mine_hard_negatives`` does the mining; the parent's
SentenceTransformer only lends it its similarity function, while embedding goes through the
int8 encoder (faster on a CPU, and the ranking users actually got). Negatives must score below
``(1 - margin)`` x the positive, which keeps most unlabelled true answers out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from embedloop.core.labels.feedback import TrainingPair
from embedloop.core.models.encoder import OnnxEncoder
from embedloop.core.settings import MiningSettings


@dataclass
class Example:
    anchor: str
    positive: str
    negatives: list[str]


class ServedEmbeddings:
    """Embeds through the int8 encoder, with the corpus already embedded (the same cache as the
    probe check: usually nothing left to compute)."""

    def __init__(self, encoder: OnnxEncoder, corpus_vectors: np.ndarray, corpus: list[str]) -> None:
        self.encoder = encoder
        self.corpus = corpus
        self.row = {text: i for i, text in enumerate(corpus)}
        self.corpus_vectors = corpus_vectors

    def documents(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self.row]
        extra = dict(zip(missing, self.encoder.encode(missing))) if missing else {}
        return np.stack([self.corpus_vectors[self.row[t]] if t in self.row else extra[t] for t in texts])

    def queries(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts)

    def patch(self, model) -> None:  # noqa: ANN001 - SentenceTransformer
        model.encode_document = lambda texts, **_: self.documents(list(texts))
        model.encode_query = lambda texts, **_: self.queries(list(texts))


def mine(model, embeddings: ServedEmbeddings, pairs: list[TrainingPair], settings: MiningSettings, seed: int,
         verbose: bool = False) -> tuple[list[Example], dict[str, int]]:
    """One example per pair: explicit negatives from feedback first, mined ones after, a random
    corpus document when mining found none within the margin."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    n = settings.num_negatives
    if n == 0:
        return [Example(p.query, p.positive, []) for p in pairs], {"mined": 0, "random": 0, "explicit": 0}
    embeddings.patch(model)
    mined = mine_hard_negatives(
        Dataset.from_dict({"anchor": [p.query for p in pairs], "positive": [p.positive for p in pairs]}),
        model, corpus=embeddings.corpus, range_max=settings.range_max,
        relative_margin=settings.relative_margin, num_negatives=n, sampling_strategy="top",
        output_format="n-tuple", batch_size=64, verbose=verbose,
        faiss_batch_size=1024,  # queries scored against the corpus at once: bounds the score matrix
    )
    found: dict[tuple[str, str], list[str]] = {}
    columns = [c for c in mined.column_names if c.startswith("negative")]
    for row in mined:
        found[(row["anchor"], row["positive"])] = [row[c] for c in columns]
    rng = random.Random(seed)
    examples, counts = [], {"mined": 0, "random": 0, "explicit": 0}
    for p in pairs:
        negatives = list(p.negatives[:n])
        counts["explicit"] += len(negatives)
        for text in found.get((p.query, p.positive), []):
            if len(negatives) < n and text != p.positive:
                negatives.append(text)
                counts["mined"] += 1
        while len(negatives) < n:
            text = embeddings.corpus[rng.randrange(len(embeddings.corpus))]
            if text != p.positive:
                negatives.append(text)
                counts["random"] += 1
        examples.append(Example(p.query, p.positive, negatives))
    return examples, counts
