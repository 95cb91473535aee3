"""What a run trains and validates on.

New feedback since the parent version, plus a replay sample of the pairs earlier versions were
trained on, minus a validation split held out by a hash of the query (so a validation query is
never trained on, in this run or a later one). Probe queries never reach this table at all.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from embedloop.core.labels import split
from embedloop.core.labels.feedback import FeedbackStore, TrainingPair
from embedloop.core.models.registry import ModelVersion
from embedloop.core.settings import RetrainSettings


@dataclass
class TrainingData:
    train: list[TrainingPair]
    validation: list[TrainingPair]
    new_pairs: int
    replayed: int
    feedback_upto: int
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        return {"new_pairs": self.new_pairs, "replayed_pairs": self.replayed, "train_pairs": len(self.train),
                "validation_pairs": len(self.validation), "feedback_upto": self.feedback_upto}


def is_validation(query: str, fraction: float) -> bool:
    return split.in_share(query, split.VALIDATION, fraction)


def trained_upto(parent: ModelVersion) -> int:
    """The last feedback id the parent (or its ancestors) saw; 0 for a base model."""
    return int((parent.training or {}).get("data", {}).get("feedback_upto", 0))


def assemble(store: FeedbackStore, parent: ModelVersion, settings: RetrainSettings, seed: int) -> TrainingData:
    upto = trained_upto(parent)
    last = store.last_id()
    new = store.pairs(after_id=upto, up_to_id=last)
    old = store.pairs(after_id=0, up_to_id=upto) if upto else []
    held = [p for p in new + old if is_validation(p.query, settings.validation_fraction)]
    new_train = [p for p in new if not is_validation(p.query, settings.validation_fraction)]
    old_train = [p for p in old if not is_validation(p.query, settings.validation_fraction)]
    rng = random.Random(seed)
    replay = rng.sample(old_train, min(len(old_train), round(settings.replay_ratio * len(new_train))))
    validation = rng.sample(held, min(len(held), settings.max_validation))
    return TrainingData(train=new_train + replay, validation=validation, new_pairs=len(new_train),
                        replayed=len(replay), feedback_upto=last)
