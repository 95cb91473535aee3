"""What the review pages show, read from the registry, the check history and the corpus: the
figures `embedloop models list / show / history` print, arranged for a person deciding whether a
version may serve. Reading only; the moves are :mod:`embedloop.core.models.promotion`'s."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from embedloop.core.models.channels import Channel
from embedloop.core.models.figures import gate_summary
from embedloop.core.models.promotion import REVIEWABLE
from embedloop.core.models.registry import PRODUCTION, AuditEntry, ModelVersion, RegistryError, VersionState
from embedloop.core.state import State

METRICS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
HISTORY = 500  # newest check runs drawn


@dataclass
class VersionLine:
    name: str
    state: str
    aliases: list[str]
    created_at: datetime
    parent: str | None
    summary: str
    reasons: list[str]


@dataclass
class Overview:
    versions: list[VersionLine]
    production: str | None
    waiting: list[str]  # candidates
    channels: list[Channel]
    audit: list[AuditEntry]
    probe_runs: list  # newest first
    drift_runs: list


@dataclass
class Answer:
    doc_id: str
    text: str
    relevant: bool


@dataclass
class ChangedQuestion:
    question: str
    group: str
    production: float
    candidate: float
    delta: float
    production_top: list[Answer]
    candidate_top: list[Answer]


@dataclass
class Moves:
    """The audited moves the page offers for a version (each one also checked when made)."""

    approve: bool = False
    reject: bool = False
    rollback_to: str | None = None  # production goes back to this version


@dataclass
class VersionReview:
    line: VersionLine
    version: ModelVersion
    against: str | None  # the production version the gates compared with
    metric: str
    gates: list[dict]
    overall: list[tuple[str, float | None, float | None]]  # metric, production, candidate
    groups: list[dict]  # group, queries, production, candidate, delta, ci, decided, note
    changed: dict[str, list[ChangedQuestion]]
    changed_count: int
    figures: dict[str, Any]
    audit: list[AuditEntry]
    probe_runs: list
    moves: Moves = field(default_factory=Moves)


def version_lines(state: State) -> list[VersionLine]:
    registry = state.registry
    states, aliases = registry.states(), registry.aliases()
    return [VersionLine(v.name, states[v.name].state if v.name in states else "",
                        sorted(a for a, target in aliases.items() if target == v.name), v.created_at, v.parent,
                        gate_summary(v.metrics.get("gates")), states[v.name].reasons if v.name in states else [])
            for v in reversed(registry.versions())]


def overview(state: State, audit_entries: int = 20) -> Overview:
    lines = version_lines(state)
    return Overview(lines, state.registry.alias(PRODUCTION),
                    [v.name for v in lines if v.state == VersionState.CANDIDATE.value], state.channels.list(),
                    state.registry.history(audit_entries), state.checks.probe_runs(limit=HISTORY),
                    state.checks.drift_runs(limit=HISTORY))


def review(state: State, name: str) -> VersionReview:
    """Everything about one version; raises :class:`UnknownVersion` for a name not registered."""
    registry = state.registry
    version = registry.get(name)
    line = next(v for v in version_lines(state) if v.name == name)
    gates = version.metrics.get("gates") or {}
    metric = gates.get("metric", "mrr@10")
    mine, theirs = gates.get("candidate_probe") or {}, gates.get("production_probe") or {}
    overall = [(m, theirs.get(m), mine.get(m)) for m in METRICS if m in mine or m in theirs]
    changes = gates.get("changed_queries") or {}
    return VersionReview(
        line, version, gates.get("against"), metric, gates.get("gates", []), overall,
        group_rows(gates, metric), changed_questions(state, changes), changes.get("changed", 0),
        {k: gates[k] for k in ("gain", "previous_probe", "sts", "retention", "parity", "compatibility")
         if gates.get(k)},
        registry.history(version=name), state.checks.probe_runs(name, limit=HISTORY), moves_for(state, line))


def group_rows(gates: dict, metric: str) -> list[dict]:
    mine, theirs = gates.get("candidate_probe_groups") or {}, gates.get("production_probe_groups") or {}
    decisions = gates.get("probe_groups") or {}
    rows = []
    for group in sorted(set(mine) | set(theirs)):
        decided = decisions.get(group, {})
        a, b = mine.get(group, {}).get(metric), theirs.get(group, {}).get(metric)
        rows.append({"group": group, "queries": (mine.get(group) or theirs.get(group) or {}).get("queries", 0),
                     "production": b, "candidate": a, "delta": a - b if a is not None and b is not None else None,
                     "ci_low": decided.get("ci_low"), "ci_high": decided.get("ci_high"),
                     "decided": decided.get("decided", False), "note": decided.get("note", "")})
    return rows


def changed_questions(state: State, changes: dict) -> dict[str, list[ChangedQuestion]]:
    entries = [*changes.get("gained", []), *changes.get("fell", [])]
    texts = state.corpus.texts({d for e in entries for d in e["candidate_top"] + e["production_top"]})

    def answers(ids: list[str], relevant: set[str]) -> list[Answer]:
        return [Answer(d, texts.get(d, "(no longer in the corpus)"), d in relevant) for d in ids]

    def question(e: dict) -> ChangedQuestion:
        relevant = set(e["relevant"])
        return ChangedQuestion(e["question"], e["group"], e["production"], e["candidate"], e["delta"],
                               answers(e["production_top"], relevant), answers(e["candidate_top"], relevant))

    return {side: [question(e) for e in changes.get(side, [])] for side in ("gained", "fell")}


def moves_for(state: State, line: VersionLine) -> Moves:
    moves = Moves(approve=line.state in {s.value for s in REVIEWABLE},
                  reject=line.state == VersionState.CANDIDATE.value)
    if PRODUCTION in line.aliases:
        try:
            moves.rollback_to = state.promotion.rollback_target()
        except RegistryError:
            pass
    return moves
