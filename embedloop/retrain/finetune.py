"""Low-learning-rate fine-tuning from the parent's checkpoint, with a budget that fits the data.

MultipleNegativesRankingLoss through ``SentenceTransformerTrainer`` (in-batch negatives plus the
mined ones) — with a compatibility weight > 0 plus the same ranking against the parent's embeddings
of the batch's documents (:mod:`embedloop.retrain.compatible_loss`) — warmup, seeded, no
duplicate texts within a batch. How long to train is chosen on the
validation split: at least ``training.min_steps`` optimizer steps (small batches get more passes,
up to ``training.max_epochs``), a validation check ``training.evaluations`` times along the way,
early stopping after ``training.patience`` checks without a gain, and the best check's weights kept.
Forgetting is held back by replay (:mod:`embedloop.retrain.data`) and by interpolation toward the
parent (:mod:`embedloop.retrain.validation`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from embedloop.core.cpu import cpu_flags
from embedloop.core.progress import Progress, no_progress
from embedloop.core.settings import TrainingSettings
from embedloop.retrain.mining import Example
from embedloop.retrain.validation import NAME, ValidationSet


def load_checkpoint(path: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu", local_files_only=True)


def use_bf16(precision: str) -> bool:
    if precision != "auto":
        return precision == "bf16"
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


@dataclass(frozen=True)
class Budget:
    steps_per_epoch: int
    epochs: float
    steps: int
    eval_steps: int | None  # None: no validation checks

    @classmethod
    def plan(cls, examples: int, settings: TrainingSettings, can_validate: bool) -> "Budget":
        per_epoch = max(1, math.ceil(examples / settings.batch_size))
        wanted = max(settings.epochs, settings.min_steps / per_epoch)
        epochs = min(wanted, settings.max_epochs)
        steps = max(1, math.ceil(epochs * per_epoch))
        eval_steps = max(1, math.ceil(steps / settings.evaluations)) if can_validate and settings.evaluations else None
        return cls(per_epoch, round(epochs, 3), steps, eval_steps)


def train(parent_checkpoint: Path, examples: list[Example], settings: TrainingSettings, work_dir: Path,
          validation: ValidationSet | None = None, metric: str = "mrr@10",
          progress: Progress = no_progress, compatibility_weight: float = 0.0) -> tuple[object, dict]:
    """The fine-tuned SentenceTransformer (not saved) and what the budget chose (for the lineage)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.training_args import BatchSamplers
    from transformers import EarlyStoppingCallback, TrainerCallback

    from embedloop.retrain.compatible_loss import CompatibleRankingLoss

    model = load_checkpoint(parent_checkpoint)
    model.max_seq_length = min(settings.max_seq_length, model.max_seq_length)
    model.model_card_data.generate_widget_examples = False  # no model card is written
    columns = {"anchor": [e.anchor for e in examples], "positive": [e.positive for e in examples]}
    for i in range(len(examples[0].negatives) if examples else 0):
        columns[f"negative_{i + 1}"] = [e.negatives[i] for e in examples]
    budget = Budget.plan(len(examples), settings, validation is not None)
    checks = budget.eval_steps is not None
    key = f"eval_{NAME}_cosine_{metric}"
    curve: list[tuple[int, float]] = []
    start = validation.score(model)[metric] if checks else None

    class Report(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            progress("training", state.global_step, state.max_steps)

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):  # noqa: ANN001
            if metrics and key in metrics:
                curve.append((state.global_step, round(float(metrics[key]), 4)))

    args = SentenceTransformerTrainingArguments(
        output_dir=str(work_dir / "trainer"), max_steps=budget.steps,
        per_device_train_batch_size=settings.batch_size, learning_rate=settings.learning_rate,
        warmup_ratio=settings.warmup_ratio, seed=settings.seed, data_seed=settings.seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES, report_to="none", logging_strategy="no", disable_tqdm=True,
        use_cpu=True, dataloader_num_workers=0, bf16=use_bf16(settings.precision),
        eval_strategy="steps" if checks else "no", eval_steps=budget.eval_steps,
        save_strategy="steps" if checks else "no", save_steps=budget.eval_steps, save_only_model=True,
        save_total_limit=1, load_best_model_at_end=checks, metric_for_best_model=key if checks else None,
        greater_is_better=True,
    )
    callbacks = [Report()] + ([EarlyStoppingCallback(settings.patience)] if checks else [])
    if compatibility_weight > 0:
        loss = CompatibleRankingLoss(model, load_checkpoint(parent_checkpoint), compatibility_weight)
    else:
        loss = MultipleNegativesRankingLoss(model)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=Dataset.from_dict(columns),
                                         loss=loss, callbacks=callbacks,
                                         evaluator=validation.evaluator() if checks else None)
    result = trainer.train()
    best = max(curve, key=lambda point: point[1]) if curve else None
    report = {**asdict(budget), "steps_run": int(result.global_step),
              "stopped_early": result.global_step < budget.steps, "validation_start": start,
              "validation_curve": curve, "best_step": best[0] if best else None, "metric": metric,
              "compatibility_weight": compatibility_weight}
    return model, report
