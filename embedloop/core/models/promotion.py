"""Moving versions in and out of production: candidate, approve, reject, roll back.

Each move is one registry transition (its checks, alias moves, states and audit entries commit
together or not at all; index channels follow or hold inside it, :mod:`embedloop.core.models.channels`),
then webhook events (``reindex_needed`` for each channel that held). The service follows the ``production`` alias by
itself; the drift check rebuilds its reference when production changes.
"""

from __future__ import annotations

from typing import Any

from embedloop.core.models.channels import Channels, Held
from embedloop.core.models.registry import (
    CANDIDATE,
    PRODUCTION,
    Action,
    AliasMove,
    Registry,
    RegistryError,
    VersionState,
)
from embedloop.core.models.webhook import notify
from embedloop.core.settings import PromotionSettings

REVIEWABLE = (VersionState.CANDIDATE, VersionState.ROLLED_BACK)  # a rolled-back version may be approved again


class Promotion:
    """The audited moves of one registry, with the webhook that reports them."""

    def __init__(self, registry: Registry, settings: PromotionSettings) -> None:
        self.registry, self.settings = registry, settings
        self.channels = Channels(registry)

    def gate_figures(self, version: str) -> dict[str, Any]:
        return self.registry.get(version).metrics.get("gates", {})

    def mark_candidate(self, version: str, actor: str | None = None) -> None:
        gates = self.gate_figures(version)
        skipped = gates.get("skipped") or []
        reason = "passed its gates" + (f" (skipped: {'; '.join(skipped)})" if skipped else "")
        with self.registry.transition(version, Action.CANDIDATE, actor=actor, reason=reason,
                                      details={"gates": gates}) as t:
            t.point(CANDIDATE)
            t.set_state(VersionState.CANDIDATE)

    def approve(self, version: str, *, actor: str | None = None, reason: str = "") -> AliasMove:
        """A waiting candidate (or a rolled-back version) becomes production."""
        details = {"gates": self.gate_figures(version)}
        with self.registry.transition(version, Action.APPROVE, actor=actor, reason=reason, details=details) as t:
            t.expect_state(*REVIEWABLE)
            move = t.point(PRODUCTION)
            t.drop(CANDIDATE)
            t.set_state(VersionState.APPROVED)
            held = self.channels.follow(t, version)
        self._notify(Action.APPROVE, move, actor, reason, details)
        self._notify_held(held, actor)
        return move

    def reject(self, version: str, *, actor: str | None = None, reason: str = "") -> None:
        """A waiting candidate will not be promoted."""
        with self.registry.transition(version, Action.REJECT, actor=actor, reason=reason,
                                      details={"gates": self.gate_figures(version)}) as t:
            t.expect_state(VersionState.CANDIDATE)
            t.drop(CANDIDATE)
            t.set_state(VersionState.REJECTED, reasons=[reason] if reason else [])

    def rollback_target(self) -> str:
        """The version production pointed at before its current one."""
        current = self.registry.alias(PRODUCTION)
        for entry in self.registry.history():
            if entry.alias == PRODUCTION and entry.to_version == current and entry.from_version:
                return entry.from_version
        raise RegistryError(f"production ({current}) has no earlier version to roll back to")

    def rollback(self, *, to: str | None = None, actor: str | None = None, reason: str = "") -> AliasMove:
        current = self.registry.alias(PRODUCTION)
        target = to or self.rollback_target()
        if target == current:
            raise RegistryError(f"{target} is already in production")
        details = {"rolled_back": current}
        with self.registry.transition(target, Action.ROLLBACK, actor=actor, reason=reason, details=details) as t:
            state = t.state_of(target)
            if state in (VersionState.REJECTED, VersionState.CANDIDATE):
                raise RegistryError(f"{target} is {state.value}; approve a candidate instead of rolling back to it")
            t.expect_alias(PRODUCTION, current)
            move = t.point(PRODUCTION)
            if current is not None:
                t.set_state(VersionState.ROLLED_BACK, version=current)
            held = self.channels.follow(t, target)
        self._notify(Action.ROLLBACK, move, actor, reason, details)
        self._notify_held(held, actor)
        return move

    def _notify_held(self, held: list[Held], actor: str | None) -> None:
        for h in held:
            self._notify(Action.REINDEX_NEEDED, AliasMove(h.channel, h.serves, h.production), actor, h.why,
                         {"channel": h.channel, "built_with": h.built_with, "production": h.production,
                          "adapter": h.adapter})

    def _notify(self, action: Action, move: AliasMove, actor: str | None, reason: str,
                details: dict[str, Any]) -> None:
        s = self.settings
        notify(s.webhook_url, {"event": action.value, "actor": actor, "reason": reason,
                               "from_version": move.from_version, "to_version": move.to_version, "details": details},
               s.webhook_attempts, s.webhook_timeout_s)


def ensure_production(registry: Registry, version: str, actor: str | None = None) -> bool:
    """Point ``production`` at ``version`` if nothing is in production yet."""
    if registry.alias(PRODUCTION) is not None:
        return False
    registry.move_alias(PRODUCTION, version, action=Action.INIT, actor=actor, reason="first version")
    return True
