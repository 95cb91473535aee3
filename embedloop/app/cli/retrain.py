"""`embedloop retrain` and `embedloop runs`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from embedloop.app.cli.common import HomeOption, console, fail, open_state


class PhaseBars:
    """One bar per phase of a run, and one per step inside a phase, each timing only itself: a bar
    stops when the next phase (or the next step of its phase) begins."""

    def __init__(self, bars: Progress, phases: set[str]) -> None:
        self.bars, self.phases = bars, phases
        self.phase: tuple[str, TaskID] | None = None
        self.step: tuple[str, TaskID] | None = None

    def __call__(self, step: str, done: int = 0, total: int = 0) -> None:
        if step in self.phases:
            if self.phase is None or self.phase[0] != step:
                self._stop(self.step, self.phase)
                self.phase, self.step = (step, self.bars.add_task(step)), None
            task = self.phase[1]
        else:
            if self.step is None or self.step[0] != step:
                self._stop(self.step)
                self.step = (step, self.bars.add_task(f"  {step}"))
            task = self.step[1]
        self.bars.update(task, completed=done, total=total or None)

    def _stop(self, *opened: tuple[str, TaskID] | None) -> None:
        for item in opened:
            if item is not None:
                self.bars.stop_task(item[1])


def retrain_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="assemble the data and say what would be done"),
    force: bool = typer.Option(False, help="ignore the cooldown"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Fine-tune production on new feedback; register a gated candidate (promoted under policy auto)."""
    import logging

    from embedloop.app.retraining import retrain_and_promote
    from embedloop.retrain.heartbeat import RunBusy
    from embedloop.retrain.pipeline import PHASES, RetrainError

    state = open_state(home)
    for noisy in ("sentence_transformers", "transformers", "datasets", "root"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    columns = (TextColumn("{task.description:<26}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bars:
        try:
            result = retrain_and_promote(state, "manual", dry_run=dry_run, force=force,
                                         progress=PhaseBars(bars, set(PHASES)))
        except (RunBusy, RetrainError) as exc:
            fail(str(exc))
    console.print(f"[bold]{result.status}[/bold]: {result.message}")
    if result.status in ("succeeded", "rejected"):
        d = result.data
        console.print(f"data: {d['new_feedback']} new feedback pairs = {d['new_train']} trained on + "
                      f"{d['new_validation']} held out for validation + {d['excluded_retention']} left out "
                      f"(retention set); {d['replayed_pairs']} earlier pairs replayed")
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
