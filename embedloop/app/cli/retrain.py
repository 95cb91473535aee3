"""`embedloop retrain` and `embedloop runs`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from embedloop.app.cli.common import HomeOption, console, fail, open_state


def retrain_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="assemble the data and say what would be done"),
    force: bool = typer.Option(False, help="ignore the cooldown"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Fine-tune production on new feedback; register a gated candidate (promoted under policy auto)."""
    import logging

    from embedloop.app.retraining import retrain_and_promote
    from embedloop.retrain.heartbeat import RunBusy
    from embedloop.retrain.pipeline import RetrainError

    state = open_state(home)
    for noisy in ("sentence_transformers", "transformers", "datasets", "root"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bars:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int = 0, total: int = 0) -> None:
            if phase not in tasks:
                for task in tasks.values():  # a new step: the ones before it are over
                    bars.stop_task(task)
                tasks[phase] = bars.add_task(phase, total=total or None)
            bars.update(tasks[phase], completed=done, total=total or None)

        try:
            result = retrain_and_promote(state, "manual", dry_run=dry_run, force=force, progress=progress)
        except (RunBusy, RetrainError) as exc:
            fail(str(exc))
    console.print(f"[bold]{result.status}[/bold]: {result.message}")
    if result.data:
        console.print(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result.data.items()))
    if result.status == "rejected":
        raise typer.Exit(3)


def runs_command(limit: int = typer.Option(20, help="newest runs to show"), home: Optional[Path] = HomeOption) -> None:
    """Retraining runs: status, phase, parent and result."""
    from datetime import datetime

    table = Table("#", "started", "status", "phase", "trigger", "parent", "version", "minutes", "message")
    for run in open_state(home).runs.runs(limit):
        minutes = f"{(run.finished_at - run.started_at) / 60:.1f}" if run.finished_at else ""
        table.add_row(str(run.id), f"{datetime.fromtimestamp(run.started_at):%Y-%m-%d %H:%M:%S}", run.status,
                      run.phase, run.trigger, run.parent or "", run.version or "", minutes, run.message[:80])
    console.print(table)
