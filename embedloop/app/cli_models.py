"""`embedloop models …`: inspect and move model versions."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from embedloop.app.cli_common import HomeOption, console, fail, settings_for

models_app = typer.Typer(help="Inspect and move model versions.", no_args_is_help=True)


def registry_for(home: Optional[Path]):
    from embedloop.core.versions import open_registry

    return open_registry(settings_for(home))


@models_app.command("list")
def models_list(home: Optional[Path] = HomeOption) -> None:
    """Registered versions and the aliases pointing at them."""
    registry = registry_for(home)
    by_version: dict[str, list[str]] = {}
    for alias, version in registry.aliases().items():
        by_version.setdefault(version, []).append(alias)
    table = Table("version", "aliases", "created", "parent", "parity (mean/worst cos)", "source")
    for v in registry.versions():
        parity = v.metrics.get("parity", {})
        table.add_row(v.name, ", ".join(sorted(by_version.get(v.name, []))), f"{v.created_at:%Y-%m-%d %H:%M:%S}",
                      v.parent or "", f"{parity.get('mean_cosine', 0):.4f} / {parity.get('min_cosine', 0):.4f}",
                      v.source)
    console.print(table)


@models_app.command("show")
def models_show(version: str, home: Optional[Path] = HomeOption) -> None:
    """Everything recorded about one version."""
    import json

    from embedloop.core.registry import RegistryError

    registry = registry_for(home)
    try:
        v = registry.get(version)
    except RegistryError as exc:
        fail(str(exc))
    aliases = [a for a, target in registry.aliases().items() if target == v.name]
    console.print_json(json.dumps({
        "version": v.name, "aliases": aliases, "created_at": v.created_at.isoformat(), "parent": v.parent,
        "source": v.source, "artifact_dir": v.artifact_dir, "manifest": v.manifest, "metrics": v.metrics,
        "training": v.training, "files": v.files,
    }))


@models_app.command("promote")
def models_promote(
    version: str,
    reason: str = typer.Option("", help="why (kept in the audit log)"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Point the production alias at VERSION (low level: no gates, but audited)."""
    from embedloop.core.registry import PRODUCTION, RegistryError

    registry = registry_for(home)
    try:
        move = registry.move_alias(PRODUCTION, version, action="promote", reason=reason)
    except RegistryError as exc:
        fail(str(exc))
    console.print(f"production: {move.from_version} -> {move.to_version}")


@models_app.command("history")
def models_history(limit: int = typer.Option(50, help="newest entries to show"),
                   home: Optional[Path] = HomeOption) -> None:
    """The audit log: every registration and alias move."""
    table = Table("#", "when (UTC)", "who", "action", "alias", "from", "to", "reason")
    for e in registry_for(home).history(limit):
        table.add_row(str(e.id), f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, e.alias or "",
                      e.from_version or "", e.to_version or "", e.reason)
    console.print(table)
