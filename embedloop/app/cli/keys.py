"""`embedloop keys …`: API keys, their scopes and quotas. Every change is audited."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from embedloop.app.cli.common import HomeOption, console, fail, open_state

keys_app = typer.Typer(help="API keys: who may embed, send feedback, administer.", no_args_is_help=True)


def parse_quota(text: str) -> tuple[str, int]:
    name, _, value = text.partition("=")
    if not value.strip().isdigit():
        fail(f"--quota {text!r}: expected NAME=WHOLE_NUMBER, e.g. embed_requests_per_s=50")
    return name.strip(), int(value)


@keys_app.command("create")
def keys_create(
    name: str = typer.Option(..., help="who holds it, e.g. search-team (letters, digits, . _ -)"),
    scopes: str = typer.Option(..., help="comma-separated: embed, feedback, admin"),
    quota: list[str] = typer.Option([], help="NAME=N overriding a quota from settings (access.*) for this key; "
                                    "repeatable"),
    reason: str = typer.Option("", help="why (kept in the audit log)"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Create a key and print its secret — once: only a digest of it is stored."""
    from embedloop.core.access.keys import AccessError, parse_scopes

    store = open_state(home).keys
    try:
        key, secret = store.create(name, parse_scopes(scopes), quotas=dict(map(parse_quota, quota)), reason=reason)
    except AccessError as exc:
        fail(str(exc))
    console.print(f"created key [bold]{key.name}[/bold] ({key.key_id}) with scopes "
                  f"{', '.join(sorted(s.value for s in key.scopes))}. Its secret, shown only now:")
    print(secret)  # plain, so that it can be piped


@keys_app.command("quota")
def keys_quota(
    name: str = typer.Argument(..., help="the key's name"),
    quota: list[str] = typer.Argument(..., help="NAME=N, or NAME=default to follow the settings again"),
    reason: str = typer.Option("", help="why (kept in the audit log)"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Change a key's own quotas without changing its secret; services apply them within access.refresh_s."""
    from embedloop.core.access.keys import AccessError

    changes = {}
    for text in quota:
        field, _, value = text.partition("=")
        changes[field.strip()] = None if value.strip() == "default" else parse_quota(text)[1]
    try:
        key = open_state(home).keys.set_quotas(name, changes, reason=reason)
    except AccessError as exc:
        fail(str(exc))
    console.print(f"{key.name}: " + (" ".join(f"{k}={v}" for k, v in sorted(key.quotas.items())) or "settings' quotas"))


@keys_app.command("list")
def keys_list(home: Optional[Path] = HomeOption) -> None:
    """Every key, revoked ones included (who had access, and until when)."""
    table = Table("name", "id", "scopes", "quotas", "created (UTC)", "by", "revoked (UTC)")
    for key in open_state(home).keys.keys():
        table.add_row(key.name, key.key_id, ",".join(sorted(s.value for s in key.scopes)),
                      " ".join(f"{k}={v}" for k, v in sorted(key.quotas.items())), f"{key.created_at:%Y-%m-%d %H:%M}",
                      key.created_by, f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "")
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    name: str = typer.Argument(..., help="the key's name"),
    reason: str = typer.Option("", help="why (kept in the audit log)"),
    home: Optional[Path] = HomeOption,
) -> None:
    """Revoke a key; running services refuse it within access.refresh_s."""
    from embedloop.core.access.keys import AccessError

    state = open_state(home)
    try:
        state.keys.revoke(name, reason=reason)
    except AccessError as exc:
        fail(str(exc))
    console.print(f"revoked {name}; running services refuse it within {state.settings.access.refresh_s:g} s")
