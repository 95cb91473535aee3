"""The ``embedloop`` command line: set up, serve, run the daemon; sub-commands live beside it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer

from embedloop.app.cli.channels import channels_app, reindex_command
from embedloop.app.cli.checks import drift_app, eval_command, probe_app, status
from embedloop.app.cli.common import HomeOption, child_environment, console, fail, open_state, require_production
from embedloop.app.cli.keys import keys_app
from embedloop.app.cli.labels import corpus_app, feedback_app
from embedloop.app.cli.models import models_app
from embedloop.app.cli.retrain import retrain_command, runs_command
from embedloop.app.cli.settings import settings_command
from embedloop.core.state import State

app = typer.Typer(help="embedloop: a self-tuning embedding server.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.add_typer(models_app, name="models")
app.add_typer(drift_app, name="drift")
app.add_typer(probe_app, name="probe")
app.add_typer(feedback_app, name="feedback")
app.add_typer(corpus_app, name="corpus")
app.add_typer(keys_app, name="keys")
app.add_typer(channels_app, name="channels")
app.command("retrain")(retrain_command)
app.command("reindex")(reindex_command)
app.command("runs")(runs_command)
app.command("status")(status)
app.command("eval")(eval_command)
app.command("settings")(settings_command)


@app.command()
def init(
    base: Optional[Path] = typer.Option(None, help="a local sentence-transformers folder (default: all-MiniLM-L6-v2)"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Create the state folder and register a base model (the first one becomes production)."""
    from embedloop.core.models.export import ExportError
    from embedloop.core.models.promotion import ensure_production
    from embedloop.core.models.registry import PRODUCTION
    from embedloop.core.models.versions import packaged_base, recover, register_version

    state = open_state(home)
    registry = state.registry
    for path in recover(state.settings, registry):
        console.print(f"removed leftover of an interrupted registration: {path}")
    current = registry.alias(PRODUCTION)
    if current is not None and base is None:
        console.print(f"already initialised: production is {current} ({state.settings.home})")
        return
    source = base or packaged_base()
    if not source.is_dir():
        fail(f"{source} is not a folder")
    with console.status("registering") as line:
        try:
            version = register_version(state.settings, registry, source, progress=lambda step, *_: line.update(step))
        except ExportError as exc:
            fail(str(exc))
    parity = version.metrics["parity"]
    console.print(f"registered [bold]{version.name}[/bold] from {source} "
                  f"(int8 parity: mean cosine {parity['mean_cosine']:.4f}, worst {parity['min_cosine']:.4f})")
    if ensure_production(registry, version.name):
        console.print(f"production -> {version.name}")


def require_keys_off_loopback(state: State, host: str, allow_open: bool) -> None:
    """Beyond loopback, an API without keys lets anyone who reaches it teach the model."""
    import ipaddress

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_open and not state.keys.by_digest()[1]:
        fail(f"no API keys exist, so anyone who can reach {host} could embed and send feedback that trains the "
             "model: create one first (`embedloop keys create`), or pass --allow-open to serve without keys")


@app.command()
def serve(
    port: Optional[int] = typer.Option(None, help="port (default from settings: 3000)"),
    host: Optional[str] = typer.Option(None, help="address to bind (default 127.0.0.1)"),
    allow_open: bool = typer.Option(False, help="serve beyond loopback even though no API key exists"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Serve the embeddings API (BentoML) until stopped."""
    state = open_state(home)
    require_production(state)
    settings = state.settings
    host = host or settings.serving.host
    require_keys_off_loopback(state, host, allow_open)
    args = [sys.executable, "-m", "bentoml", "serve", "embedloop.service.bento:EmbeddingService",
            "--host", host, "--port", str(port or settings.serving.port)]
    state.close()
    # The server takes this process over (signals reach it directly) and reads its settings at start-up.
    os.execve(sys.executable, args, child_environment(settings))


@app.command()
def up(
    port: Optional[int] = typer.Option(None, help="service port (default 3000)"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Run the service and the daemon together until stopped (Ctrl-C / SIGTERM stops both)."""
    state = open_state(home)
    require_production(state)
    cli = [sys.executable, "-m", "embedloop.app.cli"]
    on_home = ["--home", str(state.settings.home)]
    service_args = ["serve", *on_home] + (["--port", str(port)] if port else [])
    children = [subprocess.Popen([*cli, "daemon", "--wait", *on_home]), subprocess.Popen([*cli, *service_args])]
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

    from embedloop.app.daemon import Daemon

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state = open_state(home)
    runner = Daemon(state)
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    signal.signal(signal.SIGINT, lambda *_: runner.stop())
    code = runner.run(wait=wait)
    if code == 2:
        fail(f"another daemon is already running on {state.settings.home}; stop it or pass --wait", code=2)
    raise typer.Exit(code)


def main() -> None:
    app()
