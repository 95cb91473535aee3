"""`embedloop retrain`, `embedloop feedback import`, `embedloop corpus import`, `embedloop runs`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from embedloop.app.cli_common import HomeOption, console, err, fail, settings_for

feedback_app = typer.Typer(help="Labelled feedback: what retraining learns from.", no_args_is_help=True)
corpus_app = typer.Typer(help="The documents that mining and probes rank against.", no_args_is_help=True)


def report_problems(problems: list[tuple[int, str]], path: Path, skip_bad: bool) -> None:
    for number, problem in problems[:50]:
        err.print(f"{path}:{number}: {problem}")
    if len(problems) > 50:
        err.print(f"… and {len(problems) - 50} more")
    if problems and not skip_bad:
        fail(f"{len(problems)} bad records; nothing was written (fix them, or pass --skip-bad)")


@corpus_app.command("import")
def corpus_import(
    path: Path = typer.Argument(..., help="corpus.jsonl ({id, text, title?} per line) or a BEIR folder"),
    skip_bad: bool = typer.Option(False, help="write the good records even if some are bad"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Add documents (existing ids are kept as they are)."""
    from embedloop.core.feedback import FeedbackStore
    from embedloop.core.imports import read_corpus

    settings = settings_for(home)
    if not path.exists():
        fail(f"{path} does not exist")
    read = read_corpus(path)
    report_problems(read.problems, path, skip_bad)
    added = FeedbackStore(settings.monitoring_url).add_documents(dict(read.records))
    console.print(f"{len(read.records)} documents read, {added} new")


@feedback_app.command("import")
def feedback_import(
    path: Path = typer.Argument(..., help="JSONL pairs, BEIR qrels (.tsv) or a BEIR folder"),
    queries: Optional[Path] = typer.Option(None, help="queries.jsonl for qrels (default: beside the qrels folder)"),
    split: str = typer.Option("train", help="qrels split when PATH is a BEIR folder"),
    group_field: str = typer.Option("source", help="query field used as the probe group"),
    skip_bad: bool = typer.Option(False, help="write the good records even if some are bad"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Add feedback; a hash-chosen share (monitoring.probes.feedback_fraction) joins the probe set."""
    from embedloop.core.feedback import FeedbackError, FeedbackStore
    from embedloop.core.imports import read_feedback_jsonl, read_feedback_qrels

    settings = settings_for(home)
    if path.is_dir():
        queries, path = queries or path / "queries.jsonl", path / "qrels" / f"{split}.tsv"
    if not path.is_file():
        fail(f"{path} does not exist")
    if path.suffix == ".tsv":
        queries = queries or path.parent.parent / "queries.jsonl"
        if not queries.is_file():
            fail(f"qrels need the query texts: {queries} does not exist (use --queries)")
        read = read_feedback_qrels(path, queries, group_field)
    else:
        read = read_feedback_jsonl(path)
    report_problems(read.problems, path, skip_bad)
    try:
        result = FeedbackStore(settings.monitoring_url).add(
            read.records, origin="import", probe_fraction=settings.monitoring.probes.feedback_fraction)
    except FeedbackError as exc:
        fail(f"record {exc.index + 1} of the good ones: {exc}; nothing was written")
    console.print(f"{result.accepted} pairs added ({result.to_probes} to the probe set), "
                  f"{result.duplicates} duplicates skipped")


def retrain_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="assemble the data and say what would be done"),
    force: bool = typer.Option(False, help="ignore the cooldown"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Fine-tune production on new feedback; register a gated candidate (promoted under policy auto)."""
    import logging

    from embedloop.app.retrain_entry import retrain_and_promote
    from embedloop.retrain.pipeline import RetrainError
    from embedloop.retrain.runs import RunBusy

    settings = settings_for(home)
    for noisy in ("sentence_transformers", "transformers", "datasets", "root"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bars:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                for task in tasks.values():  # a new step: the ones before it are over
                    bars.stop_task(task)
                tasks[phase] = bars.add_task(phase, total=total or None)
            bars.update(tasks[phase], completed=done, total=total or None)

        try:
            result = retrain_and_promote(settings, "manual", dry_run=dry_run, force=force, progress=progress)
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

    from embedloop.retrain.runs import RunStore

    table = Table("#", "started", "status", "phase", "trigger", "parent", "version", "minutes", "message")
    for run in RunStore(settings_for(home).monitoring_url).runs(limit):
        minutes = f"{(run.finished_at - run.started_at) / 60:.1f}" if run.finished_at else ""
        table.add_row(str(run.id), f"{datetime.fromtimestamp(run.started_at):%Y-%m-%d %H:%M:%S}", run.status,
                      run.phase, run.trigger, run.parent or "", run.version or "", minutes, run.message[:80])
    console.print(table)
