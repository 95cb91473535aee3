"""The ``embedloop`` command line: set up, serve, run the daemon; sub-commands live beside it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from embedloop.app.cli_common import HomeOption, console, default_base, fail, require_production, settings_for
from embedloop.app.cli_models import models_app
from embedloop.app.cli_monitoring import drift_app, probe_app, status
from embedloop.app.cli_retrain import corpus_app, feedback_app, retrain_command, runs_command

app = typer.Typer(help="embedloop: a self-tuning embedding server.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.add_typer(models_app, name="models")
app.add_typer(drift_app, name="drift")
app.add_typer(probe_app, name="probe")
app.add_typer(feedback_app, name="feedback")
app.add_typer(corpus_app, name="corpus")
app.command("retrain")(retrain_command)
app.command("runs")(runs_command)


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


app.command()(status)


@app.command()
def demo(
    dataset: Path = typer.Option(..., help="a BEIR folder whose queries carry a group field (e.g. source)"),
    out: Path = typer.Option(Path("embedloop-demo"), help="folder for the report, logs and the demo's own state"),
    quick: bool = typer.Option(False, help="a small subset: a few minutes"),
    group_field: str = typer.Option("source", help="query field that splits traffic before / after the shift"),
    port: int = typer.Option(0, help="service port on 127.0.0.1 (0: a free one)"),
    sts: Optional[Path] = typer.Option(None, help="STS-B style jsonl for the retention gate"),
) -> None:
    """Play the continual-learning story on real data and write an HTML report."""
    import socket

    from embedloop.app.demo import Demo, DemoFailed

    if not (dataset / "corpus.jsonl").is_file():
        fail(f"{dataset} is not a BEIR folder (no corpus.jsonl)")
    if port == 0:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    out = out.resolve()
    os.environ.pop("EMBEDLOOP_HOME", None)
    settings_for(out / "state")
    with console.status("starting") as line:
        runner = Demo(dataset.resolve(), out, quick, group_field, port, sts.resolve() if sts else None,
                      lambda text: line.update(text))
        try:
            summary = runner.run()
        except DemoFailed as exc:
            fail(f"{exc} (logs and the report so far in {out})")
        except KeyboardInterrupt:
            fail(f"stopped; the service and daemon are down, the state in {out / 'state'} is consistent; "
                 f"the report so far is in {out}", code=130)
    head = summary["headline"]
    console.print_json(data=head)
    console.print(f"report: [bold]{summary['report']}[/bold]")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
