"""`embedloop channels …`: index channels, what clients that store vectors bind to. Every change is audited."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from embedloop.app.cli.common import HomeOption, console, fail, open_state, refused

channels_app = typer.Typer(help="Index channels: embedloop@<name> for clients that store document vectors.",
                           no_args_is_help=True)
ReasonOption = typer.Option("", help="why (kept in the audit log)")


@channels_app.command("create")
def channels_create(name: str, version: Optional[str] = typer.Option(
        None, help="the version the channel's stored vectors are built with (default: production)"),
        adapt: bool = typer.Option(False, help="when it cannot follow production, follow through production's query "
                                   "adapter into the stored vectors' space, if the gates registered one"),
        reason: str = ReasonOption, home: Optional[Path] = HomeOption) -> None:
    """A channel; clients embed documents and queries as embedloop@NAME."""
    channel = refused(lambda: open_state(home).channels.create(name, version, adapt=adapt, reason=reason))
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


def reindex_command(
    channel: str,
    to: str = typer.Option(..., "--to", help="the version to embed the documents with"),
    source: Optional[Path] = typer.Option(None, "--from", help="corpus.jsonl ({id, text, title?} per line) or a "
                                          "BEIR folder; default: the texts stored in the channel's current index"),
    dry_run: bool = typer.Option(False, "--dry-run", help="say how many documents and about how long"),
    reason: str = ReasonOption,
    home: Optional[Path] = HomeOption,
) -> None:
    """Embed a channel's documents with a version into a new collection of the vector database, then
    swap the channel to it. Resumable: run it again after any interruption."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from embedloop.core.models.registry import RegistryError
    from embedloop.reindex.job import Reindex, ReindexError
    from embedloop.reindex.store import VectorStore, open_client

    state = open_state(home)
    store = VectorStore(open_client(state.settings))
    try:
        with Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as bars:
            task = bars.add_task("embedding documents")
            job = Reindex(state, store, lambda step, done=0, total=0: bars.update(task, completed=done,
                                                                                   total=total or None))
            if dry_run:
                plan = job.plan(channel, to, source)
                bars.update(task, visible=False)
                console.print(f"{plan.documents} documents into {plan.collection} ({plan.written} written already): "
                              f"about {plan.estimated_s:.0f} s of embedding with {to}")
                return
            done = job.run(channel, to, source, chunk=state.settings.vectors.chunk, reason=reason)
    except (ReindexError, RegistryError) as exc:
        fail(str(exc))
    finally:
        store.close()
    console.print(f"{done.channel} now serves {done.version}: {done.documents} documents in {done.collection} "
                  f"({done.embedded} embedded by this run, {done.texts_per_s:.0f} texts/s)")
