"""Low-learning-rate fine-tuning from the parent's checkpoint, and weight-space interpolation.

MultipleNegativesRankingLoss through ``SentenceTransformerTrainer`` (in-batch negatives plus the
mined ones), warmup, seeded, no duplicate texts within a batch. Forgetting is held back by
replay (see :mod:`embedloop.retrain.data`) and by mixing parent and fine-tuned weights,
``parent + a (tuned - parent)``, with ``a`` chosen on the validation split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embedloop.core.cpu import cpu_flags
from embedloop.core.evaluation.retrieval import evaluate, top_k
from embedloop.core.labels.feedback import TrainingPair
from embedloop.core.progress import Progress, no_progress
from embedloop.core.settings import TrainingSettings
from embedloop.retrain.mining import Example, ServedEmbeddings


def load_checkpoint(path: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu", local_files_only=True)


def use_bf16(precision: str) -> bool:
    if precision != "auto":
        return precision == "bf16"
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def train(parent_checkpoint: Path, examples: list[Example], settings: TrainingSettings, work_dir: Path,
          progress: Progress = no_progress):
    """The fine-tuned SentenceTransformer (not saved)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.training_args import BatchSamplers
    from transformers import TrainerCallback

    model = load_checkpoint(parent_checkpoint)
    model.max_seq_length = min(settings.max_seq_length, model.max_seq_length)
    columns = {"anchor": [e.anchor for e in examples], "positive": [e.positive for e in examples]}
    for i in range(len(examples[0].negatives) if examples else 0):
        columns[f"negative_{i + 1}"] = [e.negatives[i] for e in examples]

    class Report(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            progress("training", state.global_step, state.max_steps)

    args = SentenceTransformerTrainingArguments(
        output_dir=str(work_dir / "trainer"), num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size, learning_rate=settings.learning_rate,
        warmup_ratio=settings.warmup_ratio, seed=settings.seed, data_seed=settings.seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", report_to="none",
        logging_strategy="no", disable_tqdm=True, use_cpu=True, dataloader_num_workers=0,
        bf16=use_bf16(settings.precision),
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=Dataset.from_dict(columns),
                                         loss=MultipleNegativesRankingLoss(model), callbacks=[Report()])
    trainer.train()
    return model


def mix(parent: dict, tuned: dict, alpha: float) -> dict:
    return {k: (parent[k] + alpha * (tuned[k] - parent[k])) if tuned[k].is_floating_point() else tuned[k]
            for k in tuned}


def validation_corpus(embeddings: ServedEmbeddings, validation: list[TrainingPair], seed: int,
                      neighbours: int = 5, random_docs: int = 300) -> list[str]:
    """The validation positives, each query's nearest documents under the parent, and a random
    sample: small enough to re-embed per interpolation coefficient, hard enough to tell them apart."""
    query_vectors = embeddings.queries([p.query for p in validation])
    near = top_k(query_vectors, embeddings.corpus_vectors, neighbours)
    rng = np.random.default_rng(seed)
    pool = rng.choice(len(embeddings.corpus), size=min(random_docs, len(embeddings.corpus)), replace=False)
    texts = [p.positive for p in validation] + [embeddings.corpus[i] for i in np.concatenate([near.ravel(), pool])]
    return list(dict.fromkeys(texts))


def choose_interpolation(parent_checkpoint: Path, tuned, embeddings: ServedEmbeddings,
                         validation: list[TrainingPair], settings: TrainingSettings, metric: str,
                         progress: Progress = no_progress) -> tuple[float, dict[str, dict[str, float]]]:
    """Load the best mix into ``tuned``; returns its coefficient and every coefficient's figures.
    Ties go to the smaller coefficient (closer to the parent)."""
    tuned_state = {k: v.detach().clone() for k, v in tuned.state_dict().items()}
    if not validation:  # nothing to choose on: keep the fine-tuned weights
        return 1.0, {}
    parent_state = load_checkpoint(parent_checkpoint).state_dict()
    corpus = validation_corpus(embeddings, validation, settings.seed)
    relevant = [{p.positive} for p in validation]
    figures: dict[str, dict[str, float]] = {}
    alphas = sorted(set(settings.interpolation))
    for step, alpha in enumerate(alphas):
        tuned.load_state_dict(mix(parent_state, tuned_state, alpha))
        docs = tuned.encode(corpus, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        queries = tuned.encode([p.query for p in validation], batch_size=64, normalize_embeddings=True,
                               convert_to_numpy=True)
        figures[str(alpha)] = evaluate(queries, docs, corpus, relevant)
        progress("choosing interpolation", step + 1, len(alphas))
    best = max(alphas, key=lambda a: (round(figures[str(a)][metric], 4), -a))
    tuned.load_state_dict(mix(parent_state, tuned_state, best))
    return best, figures
