"""`embedloop models …`: inspect and move model versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from embedloop.app.cli.common import HomeOption, console, open_state, refused
from embedloop.core.models.figures import compatibility_summary, gate_summary

models_app = typer.Typer(help="Inspect and move model versions.", no_args_is_help=True)
ReasonOption = typer.Option("", help="why (kept in the audit log)")


@models_app.command("list")
def models_list(home: Optional[Path] = HomeOption) -> None:
    """Registered versions, their states and the aliases pointing at them."""
    registry = open_state(home).registry
    by_version: dict[str, list[str]] = {}
    for alias, version in registry.aliases().items():
        by_version.setdefault(version, []).append(alias)
    states = registry.states()
    table = Table("version", "aliases", "state", "created (UTC)", "parent", "int8 parity", "probe gate",
                  "old vectors")
    table.columns[0].no_wrap = table.columns[1].no_wrap = table.columns[2].no_wrap = True
    for v in registry.versions():
        parity, gate = v.metrics.get("parity", {}), gate_summary(v.metrics.get("gates"))
        state = states.get(v.name)
        table.add_row(v.name, ", ".join(sorted(by_version.get(v.name, []))), state.state if state else "",
                      f"{v.created_at:%m-%d %H:%M}", v.parent or "", f"{parity.get('mean_cosine', 0):.4f}", gate,
                      compatibility_summary(v.metrics.get("gates")))
    console.print(table)


@models_app.command("show")
def models_show(version: str, home: Optional[Path] = HomeOption) -> None:
    """Everything recorded about one version."""
    registry = open_state(home).registry
    v = refused(lambda: registry.get(version))
    aliases = [a for a, target in registry.aliases().items() if target == v.name]
    state = registry.state(v.name)
    console.print_json(json.dumps({
        "version": v.name, "aliases": aliases, "state": state.state if state else None,
        "reasons": state.reasons if state else [], "created_at": v.created_at.isoformat(), "parent": v.parent,
        "source": v.source, "artifact_dir": v.artifact_dir, "manifest": v.manifest, "metrics": v.metrics,
        "training": v.training, "files": v.files,
    }))


@models_app.command("promote")
def models_promote(version: str, reason: str = ReasonOption, home: Optional[Path] = HomeOption) -> None:
    """Point the production alias at VERSION (low level: no gates, but audited)."""
    from embedloop.core.models.registry import PRODUCTION

    registry = open_state(home).registry
    move = refused(lambda: registry.move_alias(PRODUCTION, version, reason=reason))
    console.print(f"production: {move.from_version} -> {move.to_version}")


@models_app.command("approve")
def models_approve(version: str, reason: str = ReasonOption, home: Optional[Path] = HomeOption) -> None:
    """Promote a waiting candidate (or a rolled-back version) to production."""
    promotion = open_state(home).promotion
    move = refused(lambda: promotion.approve(version, reason=reason))
    console.print(f"approved: production {move.from_version} -> {move.to_version}")


@models_app.command("reject")
def models_reject(version: str, reason: str = ReasonOption, home: Optional[Path] = HomeOption) -> None:
    """Refuse a waiting candidate."""
    promotion = open_state(home).promotion
    refused(lambda: promotion.reject(version, reason=reason))
    console.print(f"rejected {version}")


@models_app.command("rollback")
def models_rollback(to: Optional[str] = typer.Option(None, "--to", help="version (default: the previous one)"),
                    reason: str = ReasonOption, home: Optional[Path] = HomeOption) -> None:
    """Put the previous production version (or --to VERSION) back into production."""
    promotion = open_state(home).promotion
    move = refused(lambda: promotion.rollback(to=to, reason=reason))
    console.print(f"rolled back: production {move.from_version} -> {move.to_version}")


@models_app.command("history")
def models_history(limit: int = typer.Option(50, help="newest entries to show"),
                   home: Optional[Path] = HomeOption) -> None:
    """The audit log: every registration and alias move."""
    table = Table("#", "when (UTC)", "who", "action", "alias", "from", "to", "reason", "figures")
    for e in open_state(home).registry.history(limit):
        table.add_row(str(e.id), f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, e.alias or "",
                      e.from_version or "", e.to_version or "", e.reason, gate_summary((e.details or {}).get("gates")))
    console.print(table)
