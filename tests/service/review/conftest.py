"""A state folder with something to review: the tiny model in production and a candidate from a
real retraining run on a MedQuAD slice, with a probe check of each."""

from __future__ import annotations

import pytest

from embedloop.monitoring.probe_check import ProbeCheck
from embedloop.retrain.pipeline import retrain
from tests.conftest import DATASETS, copy_home, make_state, seed_medquad

# A random tiny model learns something in a few steps only at a high rate.
SETTINGS = {"retrain": {"min_new_pairs": 50, "validation_fraction": 0.1, "cooldown_s": 0},
            "training": {"learning_rate": 1e-3, "epochs": 2},
            "gates": {"sts_dataset": str(DATASETS / "stsb_ccbysa" / "test.jsonl")}}


@pytest.fixture(scope="session")
def reviewable(tmp_path_factory, tiny_registered):
    """v1 in production, v2 a waiting candidate. Copy it before changing it."""
    home = copy_home(tiny_registered, tmp_path_factory.mktemp("reviewable"))
    with make_state(home, **SETTINGS) as state:
        seed_medquad(state, probe_queries=200)
        ProbeCheck(state)()
        result = retrain(state)
        assert result.status == "succeeded" and result.version == "v2", result.message
        ProbeCheck(state)("v2")
    return home


@pytest.fixture
def review_home(tmp_path, reviewable):
    return copy_home(reviewable, tmp_path)
