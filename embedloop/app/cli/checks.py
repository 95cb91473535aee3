"""`embedloop drift …`, `embedloop probe …`, `embedloop eval` and `embedloop status`: the checks by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from embedloop.app.cli.common import HomeOption, console, fail, open_state, refused

drift_app = typer.Typer(help="Query drift detection.", no_args_is_help=True)
probe_app = typer.Typer(help="The probe set and its recall checks.", no_args_is_help=True)


def print_report(report) -> None:
    table = Table("check", "version", "status", "figures", title=report.message or None)
    figures = {k: v for k, v in report.figures.items() if k != "groups"}
    shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
    table.add_row(report.check, report.version or "", report.status.value, shown)
    console.print(table)
    if report.figures.get("groups"):
        print_groups(report.figures["groups"])


def print_groups(groups: dict, title: str = "per group") -> None:
    table = Table("group", "queries", "recall@1", "recall@10", "MRR@10", "nDCG@10", title=title)
    for name, m in groups.items():
        table.add_row(name, str(m["queries"]), f"{m['recall@1']:.4f}", f"{m['recall@10']:.4f}",
                      f"{m['mrr@10']:.4f}", f"{m['ndcg@10']:.4f}")
    console.print(table)


def eval_command(
    dataset: Path = typer.Option(..., help="a folder in the BEIR layout"),
    version: Optional[str] = typer.Option(None, help="default: production"),
    split: str = typer.Option("test", help="which qrels file to take queries from"),
    group_field: str = typer.Option("source", help="query field that names a group"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Score a registered version on any BEIR dataset, as served (int8), without touching the probe set."""
    from rich.progress import Progress

    from embedloop.core.evaluation.probes import score_probes
    from embedloop.core.labels.beir import DatasetError
    from embedloop.core.labels.probes import probe_set_of
    from embedloop.core.models.registry import PRODUCTION
    from embedloop.core.models.versions import graph_key, load_encoder

    for required in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (dataset / required).is_file():
            fail(f"{dataset / required} is missing (BEIR layout expected)")
    state = open_state(home)
    name = version or state.registry.alias(PRODUCTION)
    if name is None:
        fail("nothing in production: name a --version")
    model = refused(lambda: state.registry.get(name))
    try:
        queries = probe_set_of(dataset, split, group_field)
    except DatasetError as exc:
        fail(str(exc))
    if not queries.query_ids:
        fail(f"{dataset} has no queries with a relevant document in qrels/{split}.tsv")
    with Progress(console=console, transient=True) as bars:
        task = bars.add_task("embedding", total=None)
        scores = score_probes(load_encoder(state.settings, model), graph_key(model), queries,
                              state.settings.corpus_cache_dir,
                              lambda step, done=0, total=0: bars.update(task, completed=done, total=total or None))
    summary = scores.summary()
    overall = {"all": summary["metrics"]}
    print_groups(overall, title=f"{name} on {dataset.name} ({split}, int8 as served)")
    if len(summary["groups"]) > 1:
        print_groups(summary["groups"])


@drift_app.command("check")
def drift_check(home: Optional[Path] = HomeOption) -> None:
    """Run one drift check now (recorded like the daemon's)."""
    from embedloop.monitoring.drift_check import DriftCheck

    print_report(DriftCheck(open_state(home))())


@probe_app.command("import")
def probe_import(
    dataset: Path = typer.Argument(..., help="a folder in the BEIR layout"),
    split: str = typer.Option("test", help="which qrels file to take queries from"),
    group_field: str = typer.Option("source", help="query field that names a probe group"),
    limit: Optional[int] = typer.Option(None, help="at most this many queries"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Import probe queries, their qrels and the corpus from a BEIR dataset."""
    from embedloop.core.labels.beir import DatasetError

    for required in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (dataset / required).is_file():
            fail(f"{dataset / required} is missing (BEIR layout expected)")
    store = open_state(home).probes
    with console.status("importing"):
        try:
            queries, docs = store.import_beir(dataset, split, group_field, limit)
        except DatasetError as exc:
            fail(f"{exc}; nothing was written")
    console.print(f"imported {queries} probe queries and {docs} documents; the probe set now has {store.counts()}")


@probe_app.command("run")
def probe_run(version: Optional[str] = typer.Option(None, help="default: production"),
              home: Optional[Path] = HomeOption) -> None:
    """Embed the probe set with a version as served and report recall, MRR and nDCG."""
    from rich.progress import Progress

    from embedloop.monitoring.probe_check import ProbeCheck

    check = ProbeCheck(open_state(home))
    with Progress(console=console, transient=True) as bars:
        task = bars.add_task("embedding the probe corpus", total=None)
        report = refused(lambda: check(version, lambda step, done=0, total=0: bars.update(
            task, completed=done, total=total or None)))
    print_report(report)


def status(home: Optional[Path] = HomeOption) -> None:
    """Serving version, the last checks and their figures, and recent triggers."""
    from datetime import datetime

    from embedloop.core.models.registry import PRODUCTION

    state = open_state(home)
    registry, store = state.registry, state.checks
    when = lambda ts: datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")  # noqa: E731
    console.print(f"production: [bold]{registry.alias(PRODUCTION)}[/bold]   aliases: {registry.aliases()}")
    drift = Table("when", "version", "window drifted", "declared", "share", "min p", "max KS", "window",
                  title="drift checks")
    for run in store.drift_runs(limit=5):
        f = run.figures
        drift.add_row(when(run.at), run.version, str(run.window_drifted), str(run.declared),
                      f"{f['share_drifted']:.3f}", f"{f['min_p_adjusted']:.2e}", f"{f['max_ks']:.3f}",
                      str(f["window_size"]))
    console.print(drift)
    probes = Table("when", "version", "recall@10", "MRR@10", "nDCG@10", "alarm", title="probe checks")
    for run in store.probe_runs(limit=5):
        m = run.metrics
        probes.add_row(when(run.at), run.version, f"{m['recall@10']:.4f}", f"{m['mrr@10']:.4f}",
                       f"{m['ndcg@10']:.4f}", run.alarm or "")
    console.print(probes)
    triggers = Table("when", "reason", "version", "status", "note", title="triggers")
    for t in state.triggers.recent(limit=10):
        triggers.add_row(when(t.at), t.reason, t.version, t.status, t.note or "")
    console.print(triggers)
