"""Which probe questions a candidate changes most, on hand-made rankings."""

import numpy as np

from embedloop.core.evaluation.changes import changed_queries
from embedloop.core.evaluation.probes import ProbeScores
from embedloop.core.evaluation.retrieval import per_query_metrics
from embedloop.core.labels.probes import ProbeSet

RELEVANT = [{"a"}, {"b"}, {"c"}, {"d"}, {"e"}]
PROBES = ProbeSet(doc_ids=list("abcdefgh"), doc_texts=list("abcdefgh"), query_ids=[f"q{i}" for i in range(5)],
                  query_texts=[f"question {i}" for i in range(5)], groups=["x", "x", "y", "y", "y"],
                  origins=["import"] * 5, relevant=RELEVANT, added_at=[0.0] * 5)


def scores(ranked: list[list[str]]) -> ProbeScores:
    return ProbeScores(PROBES, per_query_metrics(ranked, RELEVANT), ranked)


PRODUCTION = scores([list("abfgh"), list("fbgha"), list("fghca"), list("defgh"), list("efghd")])
CANDIDATE = scores([list("abfgh"),  # unchanged
                    list("bfgha"),  # b moves from 2nd to 1st: +0.5
                    list("cfgha"),  # c from 4th to 1st: +0.75
                    list("fdegh"),  # d falls from 1st to 2nd: -0.5; e replaces nothing (same set)
                    list("efghb")])  # same MRR, one of the top 5 replaced


def test_gains_and_losses_are_ordered_by_size_with_both_top_fives_and_the_relevant_answers():
    changes = changed_queries(CANDIDATE, PRODUCTION, "mrr@10", limit=10)
    assert changes["changed"] == 4  # every question but q0
    assert [c["query_id"] for c in changes["gained"]] == ["q2", "q1"]
    assert [c["query_id"] for c in changes["fell"]] == ["q3"]
    best = changes["gained"][0]
    assert best["delta"] == 0.75 and best["candidate"] == 1.0 and best["production"] == 0.25
    assert best["candidate_top"] == list("cfgha") and best["production_top"] == list("fghca")
    assert best["relevant"] == ["c"] and best["group"] == "y" and best["question"] == "question 2"
    assert changes["fell"][0]["replaced"] == 0 and changes["gained"][1]["replaced"] == 0


def test_the_limit_keeps_the_largest_changes():
    changes = changed_queries(CANDIDATE, PRODUCTION, "mrr@10", limit=1)
    assert [c["query_id"] for c in changes["gained"]] == ["q2"] and len(changes["fell"]) == 1
    assert changed_queries(CANDIDATE, PRODUCTION, "mrr@10", limit=0)["gained"] == []
    assert np.isclose(changes["fell"][0]["delta"], -0.5)
