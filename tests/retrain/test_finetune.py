"""How many steps a run takes: a floor for small batches, a ceiling on passes, checks along the way."""

import pytest

from embedloop.core.settings import TrainingSettings
from embedloop.retrain.finetune import Budget, use_bf16


def test_a_small_batch_gets_more_passes_up_to_the_ceiling():
    settings = TrainingSettings(batch_size=32, epochs=1, min_steps=200, max_epochs=8, evaluations=8)
    small = Budget.plan(100, settings, can_validate=True)  # 4 steps per pass: 50 passes wanted, 8 allowed
    assert (small.steps_per_epoch, small.epochs, small.steps, small.eval_steps) == (4, 8, 32, 4)
    medium = Budget.plan(1200, settings, can_validate=True)  # 38 steps per pass: the floor decides
    assert medium.steps >= 200 and medium.epochs == pytest.approx(200 / 38, abs=1e-3)


def test_a_large_batch_trains_its_epochs_and_checks_evenly():
    settings = TrainingSettings(batch_size=32, epochs=1, min_steps=200, evaluations=8)
    large = Budget.plan(12_576, settings, can_validate=True)
    assert (large.steps, large.eval_steps) == (393, 50)
    assert Budget.plan(12_576, settings, can_validate=False).eval_steps is None
    assert Budget.plan(12_576, settings.model_copy(update={"evaluations": 0}), can_validate=True).eval_steps is None


def test_precision_follows_the_setting():
    assert use_bf16("bf16") and not use_bf16("fp32")
