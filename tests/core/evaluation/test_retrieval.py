import numpy as np
import pytest

from embedloop.core.evaluation.retrieval import evaluate, retrieval_metrics, top_k


def test_metrics_by_hand():
    ranked = [["a", "b", "c"], ["x", "y", "z"], ["q", "r", "s"]]
    relevant = [{"a"}, {"z", "w"}, {"nothing"}]
    m = retrieval_metrics(ranked, relevant, ks=(1, 3))
    assert m["recall@1"] == pytest.approx((1 + 0 + 0) / 3)
    assert m["recall@3"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    ideal2 = 1 + 1 / np.log2(3)
    assert m["ndcg@10"] == pytest.approx((1 + (1 / np.log2(4)) / ideal2 + 0) / 3)


def test_top_k_orders_by_score():
    corpus = np.eye(5, dtype=np.float32)
    queries = np.array([[0.1, 0.9, 0.5, 0, 0]], dtype=np.float32)
    assert top_k(queries, corpus, 3).tolist() == [[1, 2, 0]]
    ids = list("abcde")
    assert evaluate(queries, corpus, ids, [{"c"}], ks=(1, 2))["recall@2"] == 1.0
