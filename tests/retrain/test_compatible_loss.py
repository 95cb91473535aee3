"""The backward-compatible objective: what it computes, and that it keeps a candidate's queries
working against the parent's stored vectors, on the tiny model and a MedQuAD slice."""

import torch

from embedloop.retrain.compatible_loss import CompatibleRankingLoss
from embedloop.retrain.finetune import load_checkpoint
from embedloop.retrain.pipeline import retrain
from tests.conftest import REVIEWABLE_SETTINGS, copy_home, make_state, seed_medquad

TEXTS = (["what causes glaucoma?", "how is asthma treated?", "what is anemia?"],
         ["Glaucoma damages the optic nerve.", "Inhalers treat asthma.", "Anemia is a lack of red blood cells."])


def features(model):
    return [model.tokenize(list(texts)) for texts in TEXTS]


def test_against_a_parent_identical_to_the_model_the_second_term_equals_the_first(tiny_base):
    model, parent = load_checkpoint(tiny_base), load_checkpoint(tiny_base)
    plain = CompatibleRankingLoss(model, parent, weight=0.0)(features(model))
    weighted = CompatibleRankingLoss(model, parent, weight=0.5)(features(model))
    assert torch.isclose(weighted, 1.5 * plain, rtol=1e-5)
    assert not any(p.requires_grad for p in parent.parameters())  # the parent is never trained
    assert all(name.startswith("model.") for name, _ in CompatibleRankingLoss(model, parent, 1.0).named_parameters())


def test_the_objective_keeps_the_candidates_queries_working_against_the_parents_vectors(tmp_path, tiny_registered):
    cross = {}
    for weight in (0.0, 1.0):
        home = copy_home(tiny_registered, tmp_path / str(weight))
        settings = {**REVIEWABLE_SETTINGS, "training": {**REVIEWABLE_SETTINGS["training"],
                                                        "compatibility_weight": weight}}
        with make_state(home, **settings) as state:
            seed_medquad(state, probe_queries=200)
            version = state.registry.get(retrain(state).version)
            assert version.training["budget"]["compatibility_weight"] == weight
            cross[weight] = version.metrics["gates"]["compatibility"]["cross"]["mrr@10"]
    # measured 0.32 without and 0.48 with it (v1's own 0.25): a margin far beyond run-to-run noise
    assert cross[1.0] > cross[0.0] + 0.05
