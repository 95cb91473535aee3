import numpy as np
import pytest

from embedloop.monitoring.drift import Correction, DriftConfig, adjust, detect


@pytest.fixture
def rng():
    return np.random.default_rng(42)


def test_same_distribution_is_not_drift(rng):
    reference = rng.normal(size=(1000, 64))
    result = detect(reference, rng.normal(size=(200, 64)))
    assert not result.drifted and result.share_drifted < 0.05
    assert result.window_size == 200 and result.reference_size == 1000


def test_a_clear_shift_is_drift(rng):
    reference = rng.normal(size=(1000, 64))
    window = rng.normal(size=(200, 64))
    window[:, :16] += 1.0
    result = detect(reference, window)
    assert result.drifted and result.share_drifted >= 0.2 and result.max_ks > 0.3
    assert result.min_p_adjusted < 1e-6 and result.centroid_ks is not None


def test_effect_size_floor_ignores_negligible_shifts_in_large_windows(rng):
    reference = rng.normal(size=(20000, 32))
    window = rng.normal(size=(20000, 32)) + 0.06  # significant with this much data, but tiny
    without_floor = detect(reference, window, DriftConfig(min_ks=0.0))
    with_floor = detect(reference, window, DriftConfig(min_ks=0.1))
    assert without_floor.drifted and not with_floor.drifted


def test_bonferroni_is_stricter_than_benjamini_hochberg():
    p = np.array([0.001, 0.01, 0.02, 0.03, 0.5])
    bh, bonf = adjust(p, Correction.FDR_BH), adjust(p, Correction.BONFERRONI)
    assert np.all(bonf >= bh) and bonf[0] == pytest.approx(0.005)


def test_pca_projection_and_lengths(rng):
    reference = rng.normal(size=(500, 48))
    window = rng.normal(size=(200, 48))
    result = detect(reference, window, DriftConfig(pca_components=8), np.full(500, 10), np.full(200, 30))
    assert result.length_ks == pytest.approx(1.0) and result.length_p < 1e-10


def test_bad_shapes_are_refused(rng):
    with pytest.raises(ValueError):
        detect(rng.normal(size=(10, 4)), rng.normal(size=(10, 5)))
