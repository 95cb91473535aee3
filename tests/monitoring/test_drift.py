import numpy as np
import pytest

from embedloop.monitoring.drift import Correction, Detector, DriftConfig, adjust, detect, mmd_test


@pytest.fixture
def rng():
    return np.random.default_rng(0)


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
    without_floor = detect(reference, window, DriftConfig(min_ks=0.0, detector=Detector.KS))
    with_floor = detect(reference, window, DriftConfig(min_ks=0.1, detector=Detector.KS))
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


def test_mmd_sees_a_partial_shift_that_ks_misses(rng):
    scales = np.linspace(3.0, 0.3, 64)  # uneven variance, as embeddings have
    reference = rng.normal(size=(1000, 64)) * scales
    window = rng.normal(size=(200, 64)) * scales
    window[:40, 4:28] += 0.7 * scales[4:28]  # a fifth of the traffic moves by less than a spread
    ks_only = detect(reference, window, DriftConfig(detector=Detector.KS))
    both = detect(reference, window)
    assert not ks_only.drifted and both.drifted and both.mmd_drifted and both.mmd_p_value < 0.01  # seed 0
    assert detect(reference, window).mmd_p_value == both.mmd_p_value  # a seeded permutation null


def test_mmd_keeps_its_level_without_drift(rng):
    reference = rng.normal(size=(600, 32))
    p_values = [mmd_test(reference, rng.normal(size=(150, 32)), permutations=199, seed=i)[1] for i in range(60)]
    assert np.mean(np.array(p_values) < 0.05) <= 0.12 and min(p_values) >= 1 / 200
