import itertools
import random

import numpy as np
import pytest

from embedloop.core.models.encoder import OnnxEncoder, plan_passes
from tests.conftest import make_settings


def pass_cost(lengths, passes, overhead):
    return sum(overhead + (end - start) * lengths[end - 1] for start, end in passes)


def all_cuts(n, max_rows):
    """Every way to cut n sorted items into contiguous passes of at most max_rows."""
    for mask in itertools.product([False, True], repeat=n - 1):
        bounds = [0, *[i + 1 for i, cut in enumerate(mask) if cut], n]
        passes = list(zip(bounds, bounds[1:]))
        if all(end - start <= max_rows for start, end in passes):
            yield passes


@pytest.mark.parametrize("seed", range(20))
def test_plan_is_the_cheapest_cut(seed):
    rng = random.Random(seed)
    n, max_rows, overhead = rng.randint(1, 10), rng.randint(1, 6), rng.choice([0, 4, 16, 64])
    lengths = np.sort([rng.randint(3, 60) for _ in range(n)])
    plan = plan_passes(lengths, max_rows, overhead)
    assert plan[0][0] == 0 and plan[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(plan, plan[1:]))  # contiguous, no gaps or overlaps
    assert all(0 < end - start <= max_rows for start, end in plan)
    best = min(pass_cost(lengths, cut, overhead) for cut in all_cuts(n, max_rows))
    assert pass_cost(lengths, plan, overhead) == best


def test_plan_extremes():
    mixed = np.array([4, 5, 6, 60, 61, 62])
    assert plan_passes(mixed, 32, 16) == [(0, 3), (3, 6)]  # short texts are not padded to 60
    assert plan_passes(mixed, 32, 10_000) == [(0, 6)]  # calls so dear that one pass wins
    assert len(plan_passes(np.full(100, 12), 32, 16)) == 4  # equal lengths: as few passes as rows allow
    assert plan_passes(np.array([], dtype=int), 32, 16) == []


def test_planned_passes_give_the_same_vectors_as_one_text_at_a_time(tiny_registered):
    settings = make_settings(tiny_registered)
    # fp32: int8 quantizes activations per call, so its vectors shift slightly with the batch.
    encoder = OnnxEncoder(settings.models_dir / "v1", "fp32")
    rng = random.Random(0)
    words = "fever cough rash headache dose insulin kidney liver blood pressure".split()
    texts = [" ".join(rng.choices(words, k=rng.randint(1, 25))) for _ in range(70)]
    tokens = [t.ids for t in encoder.tokenize(texts)]
    one_by_one = np.vstack([encoder.embed_tokens([ids]) for ids in tokens])
    planned = encoder.embed_sorted(tokens, sub_batch=16)
    assert np.allclose(planned, one_by_one, atol=1e-5)  # order restored, padding masked out
