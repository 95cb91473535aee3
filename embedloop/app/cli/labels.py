"""`embedloop corpus import`, `embedloop feedback import` and `embedloop feedback purge`."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from embedloop.app.cli.common import HomeOption, console, err, fail, open_state

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
    from embedloop.core.labels.files import read_corpus

    if not path.exists():
        fail(f"{path} does not exist")
    read = read_corpus(path)
    report_problems(read.problems, path, skip_bad)
    added = open_state(home).corpus.add(dict(read.records))
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
    """Add feedback; a hash-chosen share (probes.feedback_fraction) joins the probe set."""
    from embedloop.core.labels.feedback import FeedbackError
    from embedloop.core.labels.files import read_feedback_jsonl, read_feedback_qrels

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
    state = open_state(home)
    try:
        result = state.feedback.add(read.records, origin="import",
                                    probe_fraction=state.settings.probes.feedback_fraction)
    except FeedbackError as exc:
        fail(f"record {exc.index + 1} of the good ones: {exc}; nothing was written")
    console.print(f"{len(read.records)} pairs read: {result.accepted - result.to_probes} added to the training "
                  f"pool, {result.to_probes} to the probe set, {result.duplicates} duplicates skipped")


@feedback_app.command("purge")
def feedback_purge(
    key: str = typer.Option(..., help="the API key whose feedback goes"),
    since: Optional[datetime] = typer.Option(None, help="only what it sent from this time on (UTC), "
                                             "e.g. 2026-12-01T08:00"),
    reason: str = typer.Option("", help="why (kept in the audit log)"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Remove a key's feedback: pairs no version was trained on are deleted, pairs a version was
    trained on stay (lineage) but are marked and never used again; its probe judgements go."""
    from embedloop.core.history.runs import RunStatus
    from embedloop.core.models.registry import Action
    from embedloop.retrain.data import trained_upto

    state = open_state(home)
    if state.keys.get(key) is None:
        fail(f"no key named {key!r} (see `embedloop keys list`)")
    if any(run.status == RunStatus.RUNNING.value for run in state.runs.runs(limit=20)):
        fail("a retraining run is in progress and may have read this feedback; purge once it has ended")
    upto = max(map(trained_upto, state.registry.versions()), default=0)
    moment = since.replace(tzinfo=since.tzinfo or timezone.utc).timestamp() if since else None
    result = state.feedback.purge(key, trained_upto=upto, since=moment)
    state.registry.audit(Action.FEEDBACK_PURGE, reason=reason, details={
        "key": key, "since": since.isoformat() if since else None, "deleted_pairs": result.deleted_pairs,
        "marked_pairs": result.marked_pairs, "deleted_probe_judgements": result.deleted_probes})
    console.print(f"key {key}: {result.deleted_pairs} pairs deleted (no version trained on them), "
                  f"{result.marked_pairs} marked purged (a version was trained on them: kept for lineage, never "
                  f"used again), {result.deleted_probes} probe judgements deleted")
