"""`embedloop settings`: the settings in effect, after the config file and the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from embedloop.app.cli.common import HomeOption, console, settings_for


def settings_command(home: Optional[Path] = HomeOption) -> None:
    """Print the settings in effect as YAML (secrets masked); the reference is docs/configuration.md."""
    import yaml

    settings = settings_for(home)
    values = settings.model_dump(mode="json")
    if settings.admin.token is not None:
        values["admin"]["token"] = "********"
    console.print(yaml.safe_dump(values, sort_keys=False), end="", highlight=False, markup=False)
