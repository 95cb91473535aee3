"""What every command shares: the consoles, the --home option, the state it opens once, failing
with a message."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, Optional, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from embedloop.core.env import apply_defaults
from embedloop.core.settings import Settings, load_settings
from embedloop.core.state import State
from embedloop.core.validation import problems

console = Console()
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

HomeOption = typer.Option(None, "--home", help="state folder (default: EMBEDLOOP_HOME, else ./.embedloop)")


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def settings_for(home: Optional[Path]) -> Settings:
    """The command's settings, read once; a bad setting is a message, not a traceback."""
    try:
        settings = load_settings(home)
    except ValidationError as exc:
        fail(f"invalid settings: {'; '.join(map(str, problems(exc)))} (see docs/configuration.md)")
    apply_defaults(settings.home)
    return settings


def open_state(home: Optional[Path]) -> State:
    return State(settings_for(home))


def child_environment(settings: Settings) -> dict[str, str]:
    """The environment for a process this command starts on the same state folder."""
    return {**os.environ, "EMBEDLOOP_HOME": str(settings.home)}


def refused(move: Callable[[], T]) -> T:
    """Run a registry move; a refused one is a message and exit code 1."""
    from embedloop.core.models.registry import RegistryError

    try:
        return move()
    except RegistryError as exc:
        fail(str(exc))


def require_production(state: State) -> None:
    from embedloop.core.models.registry import PRODUCTION

    if state.registry.alias(PRODUCTION) is None:
        fail(f"nothing to serve in {state.settings.home}: run `embedloop init` first")
