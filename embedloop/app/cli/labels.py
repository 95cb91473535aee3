"""`embedloop corpus import` and `embedloop feedback import`: labels from files."""

from __future__ import annotations

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
