"""API keys: a name, scopes (``embed``, ``feedback``, ``admin``), optional quota overrides.

Kept in the registry database beside the audit log, so creating or revoking a key and its audit
entry are one transaction. Only a key's SHA-256 digest is stored: a secret is 32 random bytes, so
a fast hash is as safe as a slow one (slow hashes defend guessable passwords) and checking a key
costs a microsecond per request. A revoked key stays listed (who had access, and until when).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, DateTime, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from embedloop.core.models.registry import Action, AuditEntry, Base, Registry, default_actor, utcnow
from embedloop.core.storage.database import create_tables

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PREFIX = "el"


class Scope(str, Enum):
    EMBED = "embed"  # /v1/embeddings, /v1/models
    FEEDBACK = "feedback"  # /v1/feedback
    ADMIN = "admin"  # /admin/*


QUOTAS = ("embed_requests_per_s", "embed_texts_per_min", "feedback_items_per_day")


class AccessError(Exception):
    """A key request that is not valid (a bad name, scope or quota)."""


class KeyConflict(AccessError):
    """A name taken, or a key already revoked."""


class UnknownKey(AccessError):
    """No key has that name."""


class KeyRow(Base):
    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True, doc="public part of the secret, shown in lists")
    digest: Mapped[str] = mapped_column(String(64), unique=True, doc="sha256 of the whole secret")
    scopes: Mapped[list[str]] = mapped_column(JSON)
    quotas: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True)
class ApiKey:
    name: str
    key_id: str
    scopes: frozenset[Scope]
    quotas: dict[str, int]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def of(cls, row: KeyRow) -> "ApiKey":
        return cls(row.name, row.key_id, frozenset(Scope(s) for s in row.scopes), dict(row.quotas or {}),
                   row.created_at, row.created_by, row.revoked_at)


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(text: str | list[str]) -> frozenset[Scope]:
    names = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    if not names:
        raise AccessError("a key needs at least one scope (embed, feedback, admin)")
    unknown = [n for n in names if n not in Scope._value2member_map_]
    if unknown:
        raise AccessError(f"unknown scope {unknown[0]!r}; scopes are embed, feedback, admin")
    return frozenset(Scope(n) for n in names)


def check_quotas(quotas: dict[str, Any], *, resets: bool = False) -> dict[str, Any]:
    """``quotas`` if every name is a quota and every value a whole number >= 0 (or, with ``resets``,
    None: back to the settings' value)."""
    for name, value in quotas.items():
        if name not in QUOTAS:
            raise AccessError(f"unknown quota {name!r}; quotas are {', '.join(QUOTAS)}")
        if value is None and resets:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise AccessError(f"quota {name} must be a whole number >= 0")
    return dict(quotas)


class KeyStore:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        create_tables(Base.metadata, registry.engine)

    def create(self, name: str, scopes: frozenset[Scope], *, quotas: dict[str, int] | None = None,
               actor: str | None = None, reason: str = "") -> tuple[ApiKey, str]:
        """A new key and its secret (shown once: only its digest is kept)."""
        if not NAME.match(name):
            raise AccessError(f"invalid key name {name!r}: letters, digits, '.', '_' or '-', at most 64")
        quotas = check_quotas(quotas or {})
        key_id = secrets.token_hex(4)
        secret = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        actor = actor or default_actor()
        taken = KeyConflict(f"a key named {name!r} exists already (revoked keys keep their name)")
        try:
            with self.registry.session() as s, s.begin():
                if s.get(KeyRow, name) is not None:
                    raise taken
                row = KeyRow(name=name, key_id=key_id, digest=digest_of(secret), scopes=sorted(scopes),
                             quotas=quotas, created_at=utcnow(), created_by=actor)
                s.add(row)
                s.add(AuditEntry(actor=actor, action=Action.KEY_CREATE.value, reason=reason,
                                 details={"key": name, "key_id": key_id, "scopes": sorted(scopes), "quotas": quotas}))
                key = ApiKey.of(row)
        except IntegrityError:  # created by someone else between the check and the insert
            raise taken from None
        return key, secret

    def revoke(self, name: str, *, actor: str | None = None, reason: str = "") -> ApiKey:
        with self.registry.session() as s, s.begin():
            row = s.get(KeyRow, name, with_for_update=True)
            if row is None:
                raise UnknownKey(f"no key named {name!r}")
            if row.revoked_at is not None:
                raise KeyConflict(f"key {name!r} is already revoked")
            row.revoked_at = utcnow()
            s.add(AuditEntry(actor=actor or default_actor(), action=Action.KEY_REVOKE.value, reason=reason,
                             details={"key": name, "key_id": row.key_id}))
            return ApiKey.of(row)

    def set_quotas(self, name: str, quotas: dict[str, int | None], *, actor: str | None = None,
                   reason: str = "") -> ApiKey:
        """Change a key's own quotas (None: back to the settings'), keeping its secret."""
        check_quotas(quotas, resets=True)
        with self.registry.session() as s, s.begin():
            row = s.get(KeyRow, name, with_for_update=True)
            if row is None:
                raise UnknownKey(f"no key named {name!r}")
            before = dict(row.quotas or {})
            after = {k: v for k, v in {**before, **quotas}.items() if v is not None}
            row.quotas = after
            s.add(AuditEntry(actor=actor or default_actor(), action=Action.KEY_QUOTAS.value, reason=reason,
                             details={"key": name, "from": before, "to": after}))
            return ApiKey.of(row)

    def keys(self) -> list[ApiKey]:
        with self.registry.session() as s:
            return [ApiKey.of(r) for r in s.scalars(select(KeyRow).order_by(KeyRow.created_at))]

    def by_digest(self) -> tuple[dict[str, ApiKey], bool]:
        """Active keys by digest, and whether any key was ever created (then every route needs one)."""
        with self.registry.session() as s:
            rows = s.scalars(select(KeyRow)).all()
            return {r.digest: ApiKey.of(r) for r in rows if r.revoked_at is None}, bool(rows)

    def get(self, name: str) -> ApiKey | None:
        with self.registry.session() as s:
            row = s.get(KeyRow, name)
            return ApiKey.of(row) if row else None
