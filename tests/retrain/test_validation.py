"""The validation split: a small, hard corpus, and the least change that keeps the gain."""

import numpy as np

from embedloop.core.labels.feedback import TrainingPair
from embedloop.core.models.encoder import OnnxEncoder
from embedloop.core.settings import TrainingSettings
from embedloop.retrain.finetune import load_checkpoint
from embedloop.retrain.mining import ServedEmbeddings
from embedloop.retrain.validation import ValidationSet, choose_interpolation, choose_weight
from tests.conftest import make_settings


def served(home) -> ServedEmbeddings:
    encoder = OnnxEncoder(make_settings(home).models_dir / "v1", "int8")
    corpus = [f"answer {i} about condition {i % 17} and its treatment" for i in range(400)]
    return ServedEmbeddings(encoder, encoder.encode(corpus), corpus)


def test_a_check_ranks_a_seeded_sample_of_queries_against_their_positives_and_neighbours(tiny_registered):
    embeddings = served(tiny_registered)
    pairs = [TrainingPair(feedback_id=i, query=f"question {i}", positive=embeddings.corpus[i], negatives=[])
             for i in range(60)]
    first = ValidationSet.build(embeddings, pairs, seed=1, max_queries=20, neighbours=3, random_docs=50)
    again = ValidationSet.build(embeddings, pairs, seed=1, max_queries=20, neighbours=3, random_docs=50)
    assert len(first.queries) == 20 and first.queries == again.queries  # capped, and reproducible
    assert all(next(iter(r)) in first.corpus for r in first.relevant)
    assert len(first.corpus) <= 20 + 20 * 3 + 50 and len(set(first.corpus)) == len(first.corpus)
    assert ValidationSet.build(embeddings, [], seed=1) is None
    # what a client stored: the parent's served vectors of the same documents, row for row
    assert np.allclose(first.stored, embeddings.documents(first.corpus))


def test_the_parent_against_its_own_stored_vectors_scores_about_what_it_scores_alone(tiny_registered, tiny_base):
    embeddings = served(tiny_registered)
    pairs = [TrainingPair(feedback_id=i, query=f"treatment of condition {i % 17}", positive=embeddings.corpus[i],
                          negatives=[]) for i in range(60)]
    figures = ValidationSet.build(embeddings, pairs, seed=1, max_queries=40).figures(load_checkpoint(tiny_base))
    assert abs(figures["cross"]["mrr@10"] - figures["own"]["mrr@10"]) < 0.05  # fp32 queries vs int8 documents


class Scripted(ValidationSet):
    """Validation scores in the order the coefficients are tried (0, then ascending)."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__(["q"], ["d"], [{"d"}])
        self.scores = iter(scores)

    def figures(self, model) -> dict[str, dict[str, float]]:  # noqa: ANN001
        return {"own": {"mrr@10": next(self.scores)}}


def test_the_smallest_share_within_the_tolerance_of_the_best_is_kept(tiny_base):
    parent = load_checkpoint(tiny_base)
    tuned = load_checkpoint(tiny_base)
    for p in tuned.parameters():
        p.data += 0.5
    settings = TrainingSettings(interpolation=[0.25, 0.5, 0.75, 1.0], interpolation_tolerance=0.005)
    parent_state = {k: v.clone() for k, v in parent.state_dict().items()}
    alpha, figures = choose_interpolation(parent_state, tuned, Scripted([0.5, 0.6, 0.696, 0.7, 0.69]), settings,
                                          "mrr@10")
    assert alpha == 0.5 and set(figures) == {"0.0", "0.25", "0.5", "0.75", "1.0"}
    name, weight = next((k, v) for k, v in tuned.state_dict().items() if v.is_floating_point())
    assert np.allclose(weight.numpy(), parent_state[name].numpy() + 0.25, atol=1e-5)  # halfway to the +0.5


def outcome(own: float, cross: float) -> dict[str, dict[str, float]]:
    return {"own": {"mrr@10": own}, "cross": {"mrr@10": cross}}


def test_a_weight_is_chosen_for_its_cross_figure_among_those_that_keep_the_own_figure():
    outcomes = {0.0: outcome(0.80, 0.60), 0.3: outcome(0.795, 0.70), 1.0: outcome(0.78, 0.75)}
    assert choose_weight(outcomes, keep=0.99, metric="mrr@10") == 0.3  # 1.0 loses more than 1 % of 0.80
    assert choose_weight(outcomes, keep=0.95, metric="mrr@10") == 1.0
    assert choose_weight({0.0: outcome(0.8, 0.7), 1.0: outcome(0.8, 0.7)}, 0.99, "mrr@10") == 0.0  # a tie: the plainer
    assert choose_weight({0.0: {"own": {"mrr@10": 0.8}}, 1.0: {"own": {"mrr@10": 0.81}}}, 0.9, "mrr@10") == 0.0
