"""Moving versions in and out of production: candidate, approve, reject, roll back.

Every move is one registry transaction with its audit entry (who, why, from -> to, figures) and
then a webhook event. The service follows the ``production`` alias by itself; the drift check
rebuilds its reference when production changes.
"""

from __future__ import annotations

from typing import Any

from embedloop.core.registry import CANDIDATE, PRODUCTION, AliasMove, Registry, RegistryError
from embedloop.core.settings import Settings
from embedloop.core.webhook import notify

REVIEWABLE = ("candidate", "rolled_back")  # a rolled-back version may be approved again


def _event(settings: Settings, name: str, moves: list[AliasMove], actor: str | None, reason: str,
           details: dict[str, Any]) -> None:
    r = settings.retrain
    production = next((m for m in moves if m.alias == PRODUCTION), None)
    notify(r.webhook_url, {
        "event": name, "actor": actor, "reason": reason,
        "from_version": production.from_version if production else None,
        "to_version": production.to_version if production else None,
        "details": details,
    }, r.webhook_attempts, r.webhook_timeout_s)


def gate_figures(registry: Registry, version: str) -> dict[str, Any]:
    return registry.get(version).metrics.get("gates", {})


def mark_candidate(settings: Settings, registry: Registry, version: str, actor: str | None = None) -> None:
    registry.transition(version, action="candidate", actor=actor, reason="passed every gate",
                        details={"gates": gate_figures(registry, version)}, point={CANDIDATE: version},
                        state="candidate")


def approve(settings: Settings, registry: Registry, version: str, *, actor: str | None = None,
            reason: str = "") -> AliasMove:
    """A waiting candidate becomes production."""
    details = {"gates": gate_figures(registry, version)}
    drop = (CANDIDATE,) if registry.alias(CANDIDATE) == version else ()
    moves = registry.transition(version, action="approve", actor=actor, reason=reason, details=details,
                                point={PRODUCTION: version}, drop=drop, state="approved",
                                expect_states=REVIEWABLE)
    _event(settings, "approve", moves, actor, reason, details)
    return moves[0]


def reject(settings: Settings, registry: Registry, version: str, *, actor: str | None = None,
           reason: str = "") -> None:
    """A waiting candidate will not be promoted."""
    drop = (CANDIDATE,) if registry.alias(CANDIDATE) == version else ()
    registry.transition(version, action="reject", actor=actor, reason=reason, drop=drop, state="rejected",
                        reasons=[reason] if reason else [], expect_states=("candidate",),
                        details={"gates": gate_figures(registry, version)})


def rollback_target(registry: Registry) -> str:
    """The version production pointed at before its current one."""
    current = registry.alias(PRODUCTION)
    for entry in registry.history():
        if entry.alias == PRODUCTION and entry.to_version == current and entry.from_version:
            return entry.from_version
    raise RegistryError(f"production ({current}) has no earlier version to roll back to")


def rollback(settings: Settings, registry: Registry, *, to: str | None = None, actor: str | None = None,
             reason: str = "") -> AliasMove:
    current = registry.alias(PRODUCTION)
    target = to or rollback_target(registry)
    if target == current:
        raise RegistryError(f"{target} is already in production")
    state = registry.state(target)
    if state is not None and state.state in ("rejected", "candidate"):
        raise RegistryError(f"{target} is {state.state}; approve a candidate instead of rolling back to it")
    details = {"rolled_back": current}
    moves = registry.transition(target, action="rollback", actor=actor, reason=reason, details=details,
                                point={PRODUCTION: target}, expect_alias=(PRODUCTION, current),
                                other_states={current: "rolled_back"} if current else None)
    _event(settings, "rollback", moves, actor, reason, details)
    return moves[0]


def promote_auto(settings: Settings, registry: Registry, version: str, actor: str) -> AliasMove:
    """Policy ``auto``: the candidate is approved by the pipeline itself."""
    return approve(settings, registry, version, actor=actor, reason="policy auto: passed every gate")
