"""The probe questions whose answers a candidate changes most: what an approver reads before
deciding, beside the averages. Recorded with the gate figures (document ids, not texts: the
review page looks the texts up)."""

from __future__ import annotations

import numpy as np

from embedloop.core.evaluation.probes import ProbeScores

TOP = 5  # answers compared per question


def changed_queries(mine: ProbeScores, theirs: ProbeScores, metric: str, limit: int) -> dict:
    """``{"changed": n, "gained": [...], "fell": [...]}``: how many questions' top 5 changed, and up
    to ``limit`` questions each that gained and fell most in ``metric`` (ties: more of the top 5
    replaced first). Each entry names the question, its group, both top-5 lists and which of their
    documents are labelled relevant."""
    probes = mine.probes
    delta = mine.per_query[metric] - theirs.per_query[metric]
    changed, replaced = [], {}
    for i, (a, b) in enumerate(zip(mine.ranked, theirs.ranked)):
        if a[:TOP] != b[:TOP]:
            changed.append(i)
            replaced[i] = len(set(b[:TOP]) - set(a[:TOP]))

    def card(i: int) -> dict:
        a, b = mine.ranked[i][:TOP], theirs.ranked[i][:TOP]
        return {"query_id": probes.query_ids[i], "question": probes.query_texts[i], "group": probes.groups[i],
                "candidate": float(mine.per_query[metric][i]), "production": float(theirs.per_query[metric][i]),
                "delta": float(delta[i]), "replaced": replaced[i], "candidate_top": a, "production_top": b,
                "relevant": sorted(probes.relevant[i].intersection(a + b))}

    def most(sign: int) -> list[dict]:
        moved = [i for i in changed if np.sign(delta[i]) == sign]
        return [card(i) for i in sorted(moved, key=lambda i: (-abs(delta[i]), -replaced[i], i))[:limit]]

    return {"changed": len(changed), "top": TOP, "gained": most(1), "fell": most(-1)}
