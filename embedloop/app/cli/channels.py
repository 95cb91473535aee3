"""`embedloop channels …`: index channels, what clients that store vectors bind to. Every change is audited."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from embedloop.app.cli.common import HomeOption, console, open_state, refused

channels_app = typer.Typer(help="Index channels: embedloop@<name> for clients that store document vectors.",
                           no_args_is_help=True)
ReasonOption = typer.Option("", help="why (kept in the audit log)")


@channels_app.command("create")
def channels_create(name: str, version: Optional[str] = typer.Option(
        None, help="the version the channel's stored vectors are built with (default: production)"),
        reason: str = ReasonOption, home: Optional[Path] = HomeOption) -> None:
    """A channel; clients embed documents and queries as embedloop@NAME."""
    channel = refused(lambda: open_state(home).channels.create(name, version, reason=reason))
    console.print(f"channel {channel.name} serves {channel.serves}; embed as [bold]embedloop@{channel.name}[/bold]")


@channels_app.command("list")
def channels_list(home: Optional[Path] = HomeOption) -> None:
    """Each channel: the version it serves, the version its vectors were built with, and whether it lags."""
    state = open_state(home)
    production = state.registry.alias("production")
    table = Table("channel", "serves", "vectors built with", "production", "")
    for c in state.channels.list():
        table.add_row(c.name, c.serves, c.built_with, production or "",
                      "" if c.serves == production else f"reindex with {production} to follow")
    console.print(table)


@channels_app.command("reindexed")
def channels_reindexed(name: str, to: str = typer.Option(..., "--to", help="the version the documents were "
                                                         "embedded again with"),
                       reason: str = ReasonOption, home: Optional[Path] = HomeOption) -> None:
    """Say the channel's index was rebuilt with a version: the channel serves it from now on."""
    channel = refused(lambda: open_state(home).channels.reindexed(name, to, reason=reason))
    console.print(f"channel {channel.name} serves {channel.serves}, vectors built with {channel.built_with}")


@channels_app.command("delete")
def channels_delete(name: str, reason: str = ReasonOption, home: Optional[Path] = HomeOption) -> None:
    refused(lambda: open_state(home).channels.delete(name, reason=reason))
    console.print(f"deleted channel {name}")
