import numpy as np

from embedloop.core.labels.feedback import TrainingPair
from embedloop.core.settings import RetrainSettings
from embedloop.retrain.screening import answer_ranks, screen


class Topics:
    """Embeddings where a text's topic is its first word: a question and its answer share a direction."""

    def __init__(self, topics: int = 50) -> None:
        rng = np.random.default_rng(0)
        self.directions = rng.normal(size=(topics, 32))
        self.corpus = [f"{t} answer {i}" for t in range(topics) for i in range(4)]
        self.corpus_vectors = self.documents(self.corpus)

    def vector(self, text: str) -> np.ndarray:
        topic, *_ = text.split()
        v = self.directions[int(topic)] + 0.05 * np.random.default_rng(abs(hash(text)) % 2**32).normal(size=32)
        return v / np.linalg.norm(v)

    def documents(self, texts):
        return np.stack([self.vector(t) for t in texts])

    queries = documents


def pair(i: int, topic: int, answer_topic: int, key: str | None) -> TrainingPair:
    return TrainingPair(i, f"{topic} question {i}", f"{answer_topic} answer {i % 4}", [], key)


def test_answer_ranks_follow_the_parent():
    ranks = answer_ranks(Topics(), [pair(1, 3, 3, None), pair(2, 3, 40, None)])
    assert ranks[0] < 4 and ranks[1] >= 20


def test_a_key_teaching_wrong_answers_is_left_out_and_others_stay():
    honest = [pair(i, i % 50, i % 50, "clinic") for i in range(1, 101)]
    honest += [pair(i, i % 50, (i + 7) % 50, "clinic") for i in range(101, 111)]  # a few hard or odd ones
    wrong = [pair(i, i % 50, (i + 25) % 50, "mallory") for i in range(200, 260)]
    imported = [pair(i, i % 50, (i + 25) % 50, None) for i in range(300, 310)]  # operators are not screened
    old = [pair(i + 1001, 1, 30, "mallory") for i in range(5)]  # newer than an earlier version (ids > 1000)
    found = screen(Topics(), honest + wrong + imported + old, 0, RetrainSettings(plausible_rank=20))
    assert found.left_out == {"mallory": 65} and 5 <= found.implausible["clinic"] <= 10
    found = screen(Topics(), honest + wrong + imported + old, 1000, RetrainSettings(plausible_rank=20))
    assert found.left_out == {"mallory": 5}
    assert screen(Topics(), honest + wrong, 0, RetrainSettings(plausible_rank=0)).left_out == {}
