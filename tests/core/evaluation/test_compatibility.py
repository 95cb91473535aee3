"""Compatibility of two versions: new queries against old documents, on the tiny model's two versions."""

import numpy as np

from embedloop.core.evaluation.compatibility import compatibility, cross_scores
from embedloop.core.evaluation.probes import ProbeScores, score_probes
from embedloop.core.evaluation.retrieval import per_query_metrics
from embedloop.core.labels.probes import ProbeSet
from embedloop.core.models.versions import graph_key, load_encoder
from tests.conftest import make_state


def test_a_version_is_compatible_with_itself_and_its_cross_figures_are_its_own(reviewable, tmp_path):
    with make_state(reviewable) as state:
        v1 = state.registry.get("v1")
        encoder, key, probes = load_encoder(state.settings, v1), graph_key(v1), state.probes.load()
        own = score_probes(encoder, key, probes, tmp_path)
        cross = cross_scores(own, encoder, key, tmp_path)
    assert cross.ranked == own.ranked
    figures = compatibility(cross, own, own, "mrr@10", tolerance=0.0)
    assert figures["compatible"] and figures["cross"] == figures["own"] == figures["older"]
    assert figures["kept_gain"] is None  # no gain to keep


def test_new_queries_against_old_documents_are_measured_apart_from_either_version(reviewable, tmp_path):
    with make_state(reviewable) as state:
        v1, v2 = state.registry.get("v1"), state.registry.get("v2")
        old, new = load_encoder(state.settings, v1), load_encoder(state.settings, v2)
        probes = state.probes.load()
        older = score_probes(old, graph_key(v1), probes, tmp_path)
        own = score_probes(new, graph_key(v2), probes, tmp_path)
        cross = cross_scores(own, old, graph_key(v1), tmp_path)
    # a client that keeps v1's vectors gets part of v2's gain, not all of it
    figures = compatibility(cross, own, older, "mrr@10", tolerance=0.0)
    mrr = {side: figures[side]["mrr@10"] for side in ("cross", "own", "older")}
    assert mrr["older"] < mrr["own"] and mrr["cross"] != mrr["own"]
    assert figures["kept_gain"] == (mrr["cross"] - mrr["older"]) / (mrr["own"] - mrr["older"]) < 1
    assert figures["compatible"] == (mrr["cross"] >= mrr["older"])


def test_compatible_means_the_cross_figure_reaches_the_older_versions_own_minus_the_tolerance():
    probes = ProbeSet(doc_ids=["a", "b"], doc_texts=["a", "b"], query_ids=["q0", "q1"], query_texts=["q0", "q1"],
                      groups=["g", "g"], origins=["import"] * 2, relevant=[{"a"}, {"b"}], added_at=[0.0, 0.0])

    def scores(ranked):
        return ProbeScores(probes, per_query_metrics(ranked, probes.relevant), ranked)

    older, own = scores([["a", "b"], ["a", "b"]]), scores([["a", "b"], ["b", "a"]])  # mrr@10 0.75 and 1.0
    worse = scores([["b", "a"], ["a", "b"]])  # 0.5: new queries find less in the old index than before
    assert not compatibility(worse, own, older, "mrr@10", tolerance=0.2)["compatible"]
    assert compatibility(worse, own, older, "mrr@10", tolerance=0.25)["compatible"]
    assert compatibility(worse, own, older, "mrr@10", tolerance=0.0)["kept_gain"] == -1.0


def test_a_query_adapter_fitted_away_from_the_probe_answers_undoes_a_rotation_of_the_space():
    from scipy.stats import ortho_group

    from embedloop.core.evaluation.compatibility import fit_query_adapter
    from embedloop.core.evaluation.probes import rank_probes
    from embedloop.core.models.encoder import normalize_rows

    rng = np.random.default_rng(0)
    docs, queries, dims = 120, 20, 16
    old_docs = normalize_rows(rng.normal(size=(docs, dims)))
    old_queries = normalize_rows(old_docs[:queries] + rng.normal(scale=0.3, size=(queries, dims)))
    turn = ortho_group.rvs(dims, random_state=1)  # the new version: the same geometry, turned
    new_docs, new_queries = old_docs @ turn, old_queries @ turn
    ids = [f"d{i}" for i in range(docs)]
    probes = ProbeSet(doc_ids=ids, doc_texts=ids, query_ids=[f"q{i}" for i in range(queries)],
                      query_texts=[""] * queries, groups=["g"] * queries, origins=["import"] * queries,
                      relevant=[{ids[i]} for i in range(queries)], added_at=[0.0] * queries)
    own, older = rank_probes(new_queries, new_docs, probes), rank_probes(old_queries, old_docs, probes)
    plain = rank_probes(new_queries, old_docs, probes)
    fitted = fit_query_adapter(own, new_docs, old_docs)
    assert fitted.documents == docs - queries  # none of the probe answers
    assert fitted.cross.ranked == older.ranked  # the adapter recovers the old space exactly
    assert np.mean(plain.per_query["mrr@10"]) < np.mean(fitted.cross.per_query["mrr@10"])
    assert "dimensions differ" in fit_query_adapter(own, new_docs[:, :8], old_docs[:, :4])
    small = ProbeSet(doc_ids=ids[:40], doc_texts=ids[:40], query_ids=probes.query_ids, query_texts=probes.query_texts,
                     groups=probes.groups, origins=probes.origins, relevant=probes.relevant, added_at=probes.added_at)
    reason = fit_query_adapter(rank_probes(new_queries, new_docs[:40], small), new_docs[:40], old_docs[:40])
    assert reason == "20 corpus documents outside the probe answers; a rotation needs 32"
