"""The backward-compatible objective: what it computes, and that it keeps a candidate's queries
working against the parent's stored vectors, on the tiny model and a MedQuAD slice."""

import torch

from embedloop.retrain.compatible_loss import CompatibleRankingLoss
from embedloop.retrain.finetune import load_checkpoint
from embedloop.retrain.pipeline import retrain
from embedloop.retrain.validation import choose_weight
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
    """One run with the plain objective; one trying weights 0 and 1 where validation may keep either
    (keep 0.5): it chooses by the cross figure, and the version it registers is the weight-1 model."""
    cross, lineage = {}, {}
    for name, weights in (("plain", [0.0]), ("grid", [0.0, 1.0])):
        home = copy_home(tiny_registered, tmp_path / name)
        training = {**REVIEWABLE_SETTINGS["training"], "compatibility_weights": weights, "compatibility_keep": 0.5}
        with make_state(home, **{**REVIEWABLE_SETTINGS, "training": training}) as state:
            seed_medquad(state, probe_queries=200)
            version = state.registry.get(retrain(state).version)
            cross[name] = version.metrics["gates"]["compatibility"]["cross"]["mrr@10"]
            lineage[name] = version.training
    tried = lineage["grid"]["compatibility"]["tried"]
    assert set(tried) == {"0.0", "1.0"} and all({"own", "cross", "alpha"} <= set(t) for t in tried.values())
    assert lineage["grid"]["compatibility"]["weight"] == choose_weight(
        {float(w): t for w, t in tried.items()}, 0.5, "mrr@10") == 1.0
    assert lineage["grid"]["budget"]["compatibility_weight"] == 1.0
    assert lineage["plain"]["compatibility"]["weight"] == 0.0
    # measured 0.32 without and 0.48 with it (v1's own 0.25): a margin far beyond run-to-run noise
    assert cross["grid"] > cross["plain"] + 0.05
