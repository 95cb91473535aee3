"""Is one version really better than another on the same queries? Paired comparisons with their
uncertainty, so that a gate does not mistake noise for a gain.

For each query the difference of a per-query metric (candidate − baseline) is taken; a bootstrap
(``scipy.stats.bootstrap``, BCa) gives a confidence interval of the mean difference and a
sign-flip permutation test (``scipy.stats.permutation_test``) the p-value against a threshold.
Both are seeded: the same scores give the same verdict.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

POWER = 0.8  # for the estimate of how many queries a decision needs


@dataclass(frozen=True)
class PairedComparison:
    """The mean per-query difference with its two-sided ``2 × confidence − 1`` interval, so that
    ``ci_low`` is a one-sided lower bound at ``confidence`` (and ``ci_high`` an upper one)."""

    queries: int
    candidate: float  # mean metric of each side
    baseline: float
    mean: float  # mean difference, candidate − baseline
    ci_low: float
    ci_high: float
    p_value: float  # of "the mean difference is at most ``threshold``"
    threshold: float
    confidence: float
    better: int  # queries where the candidate scores higher
    worse: int
    queries_needed: int | None  # for ci_low to clear ``threshold`` at this variance and gain (80 % power)

    @property
    def clears(self) -> bool:
        """Confidently above the threshold."""
        return self.ci_low >= self.threshold

    def confidently_below(self, threshold: float) -> bool:
        return self.ci_high < threshold

    def as_dict(self) -> dict:
        return asdict(self)


def queries_needed(differences: np.ndarray, threshold: float, confidence: float) -> int | None:
    """How many queries a one-sided test at ``confidence`` needs to see the observed mean gain
    above ``threshold`` with 80 % power, at the observed spread; None when there is no gain to see."""
    gap = float(differences.mean()) - threshold
    spread = float(differences.std(ddof=1)) if differences.size > 1 else 0.0
    if gap <= 0:
        return None
    if spread == 0:
        return int(differences.size)
    z = stats.norm.ppf(confidence) + stats.norm.ppf(POWER)
    return int(math.ceil((z * spread / gap) ** 2))


def compare(candidate: np.ndarray, baseline: np.ndarray, threshold: float = 0.0, confidence: float = 0.95,
            resamples: int = 4999, seed: int = 0) -> PairedComparison:
    """Compare per-query scores of two versions on the same queries (same order)."""
    candidate, baseline = np.asarray(candidate, dtype=float), np.asarray(baseline, dtype=float)
    if candidate.shape != baseline.shape or candidate.ndim != 1 or candidate.size == 0:
        raise ValueError("compare needs two equally long, non-empty 1-D score arrays")
    d = candidate - baseline
    mean = float(d.mean())
    if d.size < 2 or np.all(d == d[0]):  # nothing varies: the interval is the value itself
        low = high = mean
        p_value = 0.0 if mean > threshold else 1.0
    else:
        rng = np.random.default_rng(seed)
        low, high = _interval(d, 2 * confidence - 1, resamples, rng)
        p_value = float(stats.permutation_test((d - threshold,), np.mean, permutation_type="samples",
                                               alternative="greater", n_resamples=resamples, vectorized=True,
                                               rng=rng).pvalue)
    return PairedComparison(
        queries=int(d.size), candidate=float(candidate.mean()), baseline=float(baseline.mean()), mean=mean,
        ci_low=float(low), ci_high=float(high), p_value=p_value, threshold=threshold, confidence=confidence,
        better=int((d > 0).sum()), worse=int((d < 0).sum()), queries_needed=queries_needed(d, threshold, confidence))


def _interval(d: np.ndarray, level: float, resamples: int, rng: np.random.Generator) -> tuple[float, float]:
    result = stats.bootstrap((d,), np.mean, confidence_level=level, n_resamples=resamples, method="BCa",
                             vectorized=True, rng=rng)
    low, high = result.confidence_interval
    if not (np.isfinite(low) and np.isfinite(high)):  # BCa can degenerate on very skewed data
        result = stats.bootstrap((d,), np.mean, confidence_level=level, n_resamples=resamples,
                                 method="percentile", vectorized=True, rng=rng)
        low, high = result.confidence_interval
    return float(low), float(high)
