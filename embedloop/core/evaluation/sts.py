"""General-domain retention on sentence similarity: Spearman of cosine against STS-B style scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embedloop.core.labels.beir import read_jsonl
from embedloop.core.models.encoder import OnnxEncoder


def read_sts(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """STS-B style jsonl: ``sentence1``, ``sentence2``, ``score``."""
    records = read_jsonl(path)
    return ([r["sentence1"] for r in records], [r["sentence2"] for r in records],
            np.array([float(r["score"]) for r in records]))


def sts_spearman(encoder: OnnxEncoder, path: Path) -> float:
    from scipy.stats import spearmanr

    first, second, scores = read_sts(path)
    a, b = encoder.encode(first), encoder.encode(second)
    cosine = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(spearmanr(cosine, scores).statistic)
