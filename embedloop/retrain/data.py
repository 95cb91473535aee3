"""What a run trains and validates on.

New feedback since the parent version, plus a replay sample of the pairs earlier versions were
trained on, minus a validation split held out by a hash of the query (so a validation query is
never trained on, in this run or a later one). Probe queries never reach the feedback table at
all, and nothing from the retention set (evaluation only) is trained on: pairs that touch it are
left out and counted. The run then screens each key's new pairs against the parent
(:mod:`embedloop.retrain.screening`) and, if ``retrain.max_key_share`` is below 1, cuts any key's
new pairs to that share of what is left (:meth:`TrainingData.cap`) — after screening, so that a
key screening removed does not cost the others their pairs.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from embedloop.core.labels import split
from embedloop.core.labels.beir import load_beir
from embedloop.core.labels.feedback import FeedbackStore, TrainingPair
from embedloop.core.models.registry import ModelVersion
from embedloop.core.settings import RetrainSettings


@dataclass
class TrainingData:
    train: list[TrainingPair]
    validation: list[TrainingPair]
    new_feedback: int  # pairs added since the parent was trained
    new_train: int  # of those, to train on
    new_validation: int  # of those, held out by the query hash
    excluded: int  # of those, left out because they touch the retention set
    replayed: int  # earlier pairs trained on again
    feedback_upto: int
    after_id: int  # pairs with a higher id are new: the parent was trained up to here
    by_source: dict[str, int]  # new pairs trained on, per API key ("(no key)": imports and keyless feedback)
    capped: dict[str, int]  # new pairs left out per key by the share cap
    screening: dict = field(default_factory=dict)  # what screening against the parent left out (set by the run)

    @property
    def new_pairs(self) -> int:
        """New pairs to train on: what ``retrain.min_new_pairs`` counts."""
        return self.new_train

    def summary(self) -> dict[str, int]:
        return {"new_feedback": self.new_feedback, "new_train": self.new_train,
                "new_validation": self.new_validation, "excluded_retention": self.excluded,
                "replayed_pairs": self.replayed, "train_pairs": len(self.train),
                "validation_pairs": len(self.validation), "feedback_upto": self.feedback_upto,
                "by_source": self.by_source, "capped_by_key_share": self.capped, "screening": self.screening}

    def leave_out(self, keys: set[str], screening: dict) -> None:
        """Leave out the new pairs of ``keys``, from training and validation."""
        def suspect(p: TrainingPair) -> bool:
            return p.key in keys and p.feedback_id > self.after_id

        removed = [p for p in self.train if suspect(p)]
        self.train = [p for p in self.train if not suspect(p)]
        self.validation = [p for p in self.validation if not suspect(p)]
        self.screening = screening
        self.new_train -= len(removed)
        for source, n in Counter(map(source_of, removed)).items():
            self.by_source[source] -= n

    def cap(self, share: float, seed: int) -> None:
        """Cut each key's new pairs to at most ``share`` of the new pairs (see :func:`cap_key_shares`)."""
        new = [p for p in self.train if p.feedback_id > self.after_id]
        kept, self.capped = cap_key_shares(new, share, random.Random(seed))
        if self.capped:
            ids = {p.feedback_id for p in kept}
            self.train = [p for p in self.train if p.feedback_id <= self.after_id or p.feedback_id in ids]
            self.new_train = len(kept)
            self.by_source = dict(Counter(map(source_of, kept)))

    def account(self, parent: str) -> str:
        """One sentence that adds up."""
        excluded = f", {self.excluded} left out (in the retention set)" if self.excluded else ""
        capped = "".join(f", {n} from key {k} left out (retrain.max_key_share)" for k, n in self.capped.items())
        capped += "".join(f", {n} from key {k} left out (its answers mostly implausible to the parent)"
                          for k, n in self.screening.get("left_out_by_key", {}).items())
        return (f"{self.new_feedback} new feedback pairs since {parent}: {self.new_train} to train on, "
                f"{self.new_validation} held out for validation{excluded}{capped}; {self.replayed} earlier pairs "
                f"replayed; training on {len(self.train)}, validating on {len(self.validation)}")


NO_KEY = "(no key)"


def is_validation(query: str, fraction: float) -> bool:
    return split.in_share(query, split.VALIDATION, fraction)


def trained_upto(parent: ModelVersion) -> int:
    """The last feedback id the parent (or its ancestors) saw; 0 for a base model."""
    return int((parent.training or {}).get("data", {}).get("feedback_upto", 0))


def held_out_texts(folder: Path | None) -> set[str]:
    """The normalised query and document texts of an evaluation-only dataset (empty without one)."""
    if folder is None:
        return set()
    data = load_beir(folder, "test")
    return {split.normalised(t) for t in [*data.corpus.values(), *(q["text"] for q in data.queries.values())]}


def touches(texts: set[str]) -> Callable[[TrainingPair], bool]:
    def check(pair: TrainingPair) -> bool:
        return any(split.normalised(t) in texts for t in (pair.query, pair.positive, *pair.negatives))

    return check


def source_of(pair: TrainingPair) -> str:
    return pair.key or NO_KEY


def cap_key_shares(new: list[TrainingPair], share: float,
                   rng: random.Random) -> tuple[list[TrainingPair], dict[str, int]]:
    """``new`` with each key's pairs cut to at most ``share`` of the new pairs, measured against
    everyone else's (a sole source is not cut); and how many were cut per key."""
    if share >= 1:
        return new, {}
    counts = Counter(p.key for p in new if p.key is not None)
    cut: dict[str, int] = {}
    for key, mine in counts.items():
        others = len(new) - mine
        allowed = math.floor(share / (1 - share) * others)
        if others and mine > allowed:
            cut[key] = mine - allowed
    if not cut:
        return new, {}
    dropped = {p.feedback_id for key, n in cut.items() for p in rng.sample([p for p in new if p.key == key], n)}
    return [p for p in new if p.feedback_id not in dropped], cut


def assemble(store: FeedbackStore, parent: ModelVersion, settings: RetrainSettings, seed: int,
             held_out: set[str] | None = None) -> TrainingData:
    upto = trained_upto(parent)
    last = store.last_id()
    new = store.pairs(after_id=upto, up_to_id=last)
    old = store.pairs(after_id=0, up_to_id=upto) if upto else []
    forbidden = touches(held_out or set())
    excluded = sum(map(forbidden, new))
    new, old = [p for p in new if not forbidden(p)], [p for p in old if not forbidden(p)]
    held = [p for p in new + old if is_validation(p.query, settings.validation_fraction)]
    new_train = [p for p in new if not is_validation(p.query, settings.validation_fraction)]
    old_train = [p for p in old if not is_validation(p.query, settings.validation_fraction)]
    rng = random.Random(seed)
    replay = rng.sample(old_train, min(len(old_train), round(settings.replay_ratio * len(new_train))))
    validation = rng.sample(held, min(len(held), settings.max_validation))
    return TrainingData(train=new_train + replay, validation=validation, new_feedback=len(new) + excluded,
                        new_train=len(new_train), new_validation=len(new) - len(new_train), excluded=excluded,
                        replayed=len(replay), feedback_upto=last, after_id=upto,
                        by_source=dict(Counter(map(source_of, new_train))), capped={})
