import numpy as np

from embedloop.core.evaluation.paired import compare, queries_needed


def reciprocal_ranks(rng, n):
    """MRR@10-like per-query scores: mostly 1 or 1/2, some misses."""
    return rng.choice([1.0, 1 / 2, 1 / 3, 1 / 5, 0.0], size=n, p=[0.55, 0.2, 0.1, 0.05, 0.1])


def no_signal_candidate(rng, baseline):
    """The same model re-trained with another seed: some queries move up, as many down."""
    moved = rng.random(baseline.size) < 0.3
    return np.where(moved, reciprocal_ranks(rng, baseline.size), baseline)


def test_no_signal_candidates_clear_the_gate_at_most_at_the_confidence_level():
    rng = np.random.default_rng(7)
    passed_old_rule = passed = 0
    for trial in range(100):
        baseline = reciprocal_ranks(rng, 247)
        candidate = no_signal_candidate(rng, baseline)
        result = compare(candidate, baseline, threshold=0.005, confidence=0.95, resamples=999, seed=trial)
        passed += result.clears
        passed_old_rule += candidate.mean() - baseline.mean() >= 0.005  # the point estimate alone
    assert passed <= 5 and passed_old_rule >= 25  # the old rule took noise for a gain about a third of the time


def test_a_real_gain_is_confirmed_and_its_interval_holds_the_truth():
    rng = np.random.default_rng(3)
    baseline = reciprocal_ranks(rng, 2000)
    candidate = np.where(rng.random(2000) < 0.25, 1.0, baseline)  # a quarter of the queries now rank first
    result = compare(candidate, baseline, threshold=0.005)
    assert result.clears and result.ci_low < result.mean < result.ci_high
    assert result.ci_low > 0.05 and result.p_value < 0.01 and result.worse == 0 and result.better > 200


def test_identical_scores_and_the_same_inputs_give_one_verdict():
    rng = np.random.default_rng(0)
    scores = reciprocal_ranks(rng, 100)
    same = compare(scores, scores, threshold=0.005)
    assert (same.mean, same.ci_low, same.ci_high, same.clears) == (0.0, 0.0, 0.0, False)
    other = no_signal_candidate(rng, scores)
    assert compare(other, scores, 0.0) == compare(other, scores, 0.0)  # seeded


def test_queries_needed_grows_as_the_gain_shrinks():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.3, 500)
    assert queries_needed(noise + 0.1, 0.005, 0.95) < queries_needed(noise + 0.02, 0.005, 0.95)
    assert queries_needed(noise - 0.1, 0.005, 0.95) is None
