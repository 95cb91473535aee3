"""Drift statistics: per-dimension two-sample KS tests with a multiple-testing correction and an
effect-size floor, plus two 1-D tests a person can read (query length, similarity to the
reference centroid). Pure functions of arrays; storage and scheduling live elsewhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum

import numpy as np
from scipy import stats


class Correction(str, Enum):
    FDR_BH = "fdr_bh"
    BONFERRONI = "bonferroni"


@dataclass(frozen=True)
class DriftConfig:
    alpha: float = 0.01            # family-wise / false-discovery level after correction
    correction: Correction = Correction.FDR_BH
    min_ks: float = 0.1            # effect-size floor: a dimension also needs this KS statistic
    min_share: float = 0.0         # a window is drifted when this share of dimensions is (0: any one)
    pca_components: int | None = None  # project on the reference's top components first


@dataclass(frozen=True)
class DriftResult:
    share_drifted: float
    min_p_adjusted: float
    max_ks: float
    window_size: int
    reference_size: int
    drifted: bool
    length_ks: float | None = None
    length_p: float | None = None
    centroid_ks: float | None = None
    centroid_p: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def adjust(p_values: np.ndarray, correction: Correction) -> np.ndarray:
    if correction is Correction.BONFERRONI:
        return np.minimum(p_values * p_values.size, 1.0)
    return stats.false_discovery_control(p_values, method="bh")


class PCA:
    """Principal axes of the reference (numpy SVD), to test fewer, decorrelated dimensions."""

    def __init__(self, reference: np.ndarray, components: int) -> None:
        self.mean = reference.mean(axis=0)
        _, _, vt = np.linalg.svd(reference - self.mean, full_matrices=False)
        self.axes = vt[: min(components, vt.shape[0])]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) @ self.axes.T


def centroid_similarity(x: np.ndarray, centroid: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(centroid)
    return (x @ centroid) / np.clip(norms, 1e-12, None)


def detect(
    reference: np.ndarray,
    window: np.ndarray,
    config: DriftConfig = DriftConfig(),
    reference_lengths: np.ndarray | None = None,
    window_lengths: np.ndarray | None = None,
) -> DriftResult:
    """Compare a window of query embeddings with the reference sample of the same model version."""
    if reference.ndim != 2 or window.ndim != 2 or reference.shape[1] != window.shape[1]:
        raise ValueError("reference and window must be 2-D with the same number of dimensions")
    if len(reference) < 2 or len(window) < 2:
        raise ValueError("reference and window need at least two embeddings each")
    ref, win = reference, window
    if config.pca_components:
        project = PCA(reference, config.pca_components)
        ref, win = project(reference), project(window)
    ks = stats.ks_2samp(ref, win, axis=0)
    p_adj = adjust(np.asarray(ks.pvalue, dtype=float), config.correction)
    statistic = np.asarray(ks.statistic, dtype=float)
    drifted_dims = (p_adj < config.alpha) & (statistic >= config.min_ks)
    share = float(drifted_dims.mean())

    centroid = reference.mean(axis=0)
    cent = stats.ks_2samp(centroid_similarity(reference, centroid), centroid_similarity(window, centroid))
    length = None
    if reference_lengths is not None and window_lengths is not None and len(reference_lengths) and len(window_lengths):
        length = stats.ks_2samp(reference_lengths, window_lengths)
    return DriftResult(
        share_drifted=share,
        min_p_adjusted=float(p_adj.min()),
        max_ks=float(statistic.max()),
        window_size=int(len(window)),
        reference_size=int(len(reference)),
        drifted=int(drifted_dims.sum()) >= max(1, int(np.ceil(config.min_share * drifted_dims.size))),
        length_ks=float(length.statistic) if length is not None else None,
        length_p=float(length.pvalue) if length is not None else None,
        centroid_ks=float(cent.statistic),
        centroid_p=float(cent.pvalue),
    )
