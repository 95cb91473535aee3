"""Drift statistics. Pure functions of arrays; storage and scheduling live elsewhere.

Two detectors look at a window of query embeddings against a reference sample of the same version:

* **KS** — per-dimension two-sample Kolmogorov-Smirnov tests with a multiple-testing correction
  (Benjamini-Hochberg or Bonferroni) and an effect-size floor. It sees a whole population moving;
  a partial shift (a fifth of the traffic from new sources) mostly escapes it.
* **MMD** — the maximum mean discrepancy with a linear kernel on the pooled sample's whitened top
  principal components (a Hotelling-style test of the mean), with a permutation null. Embeddings
  spread their variance unevenly; whitening weighs every principal direction alike, so a small
  share of new traffic that moves the mean along a minor direction is seen.

Plus two 1-D tests a person can read: query length, and similarity to the reference centroid.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum

import numpy as np
from scipy import stats


class Correction(str, Enum):
    FDR_BH = "fdr_bh"
    BONFERRONI = "bonferroni"


class Detector(str, Enum):
    KS = "ks"
    MMD = "mmd"
    BOTH = "both"  # a window is drifted when either detector says so


@dataclass(frozen=True)
class DriftConfig:
    alpha: float = 0.01            # KS: family-wise / false-discovery level after correction
    correction: Correction = Correction.FDR_BH
    min_ks: float = 0.1            # KS effect-size floor: a dimension also needs this KS statistic
    min_share: float = 0.0         # KS: a window is drifted when this share of dimensions is (0: any one)
    pca_components: int | None = None  # KS: project on the reference's top components first
    detector: Detector = Detector.BOTH
    mmd_alpha: float = 0.05        # MMD: permutation p-value below this
    mmd_components: int = 32       # MMD: whitened principal components compared
    permutations: int = 500        # MMD: size of the permutation null (seeded)


@dataclass(frozen=True)
class DriftResult:
    share_drifted: float
    min_p_adjusted: float
    max_ks: float
    window_size: int
    reference_size: int
    drifted: bool
    ks_drifted: bool = False
    mmd_statistic: float | None = None
    mmd_p_value: float | None = None
    mmd_drifted: bool = False
    length_ks: float | None = None
    length_p: float | None = None
    centroid_ks: float | None = None
    centroid_p: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        ks = f"KS: {self.share_drifted:.0%} of dimensions drifted (max KS {self.max_ks:.3f})"
        mmd = f"; MMD p = {self.mmd_p_value:.3f}" if self.mmd_p_value is not None else ""
        return f"{ks}{mmd}, window {self.window_size} vs reference {self.reference_size}"


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


def mmd_test(reference: np.ndarray, window: np.ndarray, components: int = 32, permutations: int = 500,
             seed: int = 0) -> tuple[float, float]:
    """(statistic, permutation p-value) of the squared distance between the two means on the pooled
    sample's top ``components`` principal components, each scaled to unit variance. The axes come
    from the pooled sample, so every permutation of it is judged on the same footing."""
    pooled = np.vstack([reference, window]).astype(np.float64)
    centred = pooled - pooled.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(components, int(np.sum(singular > singular[0] * 1e-6)))
    z = centred @ (vt[:k].T / (singular[:k] / np.sqrt(len(pooled))))
    n, m, total = len(window), len(pooled), z.sum(axis=0)

    def distance(window_sums: np.ndarray) -> np.ndarray:
        """Squared mean difference, from the sums over the rows taken as the window."""
        diff = window_sums / n - (total - window_sums) / (m - n)
        return np.einsum("ij,ij->i", diff, diff)

    observed = float(distance(z[len(reference):].sum(axis=0)[None, :])[0])
    rng, null = np.random.default_rng(seed), []
    for start in range(0, permutations, 64):  # 64 permutations at a time: memory stays ~64 x m
        count = min(64, permutations - start)
        chosen = np.argpartition(rng.random((count, m)), n, axis=1)[:, :n]
        mask = np.zeros((count, m))
        np.put_along_axis(mask, chosen, 1.0, axis=1)
        null.append(distance(mask @ z))
    return observed, float((np.sum(np.concatenate(null) >= observed) + 1) / (permutations + 1))


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
    ks_drifted = int(drifted_dims.sum()) >= max(1, int(np.ceil(config.min_share * drifted_dims.size)))

    mmd_statistic = mmd_p = None
    if config.detector is not Detector.KS:
        mmd_statistic, mmd_p = mmd_test(reference, window, config.mmd_components, config.permutations)
    mmd_drifted = mmd_p is not None and mmd_p < config.mmd_alpha
    drifted = {Detector.KS: ks_drifted, Detector.MMD: mmd_drifted, Detector.BOTH: ks_drifted or mmd_drifted}

    centroid = reference.mean(axis=0)
    cent = stats.ks_2samp(centroid_similarity(reference, centroid), centroid_similarity(window, centroid))
    length = None
    if reference_lengths is not None and window_lengths is not None and len(reference_lengths) and len(window_lengths):
        length = stats.ks_2samp(reference_lengths, window_lengths)
    return DriftResult(
        share_drifted=float(drifted_dims.mean()),
        min_p_adjusted=float(p_adj.min()),
        max_ks=float(statistic.max()),
        window_size=int(len(window)),
        reference_size=int(len(reference)),
        drifted=drifted[config.detector],
        ks_drifted=bool(ks_drifted),
        mmd_statistic=mmd_statistic,
        mmd_p_value=mmd_p,
        mmd_drifted=bool(mmd_drifted),
        length_ks=float(length.statistic) if length is not None else None,
        length_p=float(length.pvalue) if length is not None else None,
        centroid_ks=float(cent.statistic),
        centroid_p=float(cent.pvalue),
    )
