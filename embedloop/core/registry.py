"""Model registry: immutable versions, movable aliases, and an append-only audit log.

Any SQLAlchemy URL works (SQLite by default, PostgreSQL for several machines).
"""

from __future__ import annotations

import getpass
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import DDL, JSON, DateTime, ForeignKey, Integer, String, Text, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from embedloop.core.db import create_tables, make_engine

PRODUCTION = "production"
VERSION_NAME = re.compile(r"^v(\d+)$")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


class RegistryError(Exception):
    """A registry operation that cannot be done (unknown version, bad name, …)."""


class Base(DeclarativeBase):
    pass


class ModelVersion(Base):
    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    parent: Mapped[str | None] = mapped_column(String(32), nullable=True)
    source: Mapped[str] = mapped_column(Text, doc="where the weights came from (base path or training run)")
    artifact_dir: Mapped[str] = mapped_column(Text, doc="folder name under $EMBEDLOOP_HOME/models")
    files: Mapped[dict[str, str]] = mapped_column(JSON, doc="relative path -> sha256 of every artifact file")
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    training: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Alias(Base):
    __tablename__ = "aliases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(ForeignKey("model_versions.name"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    alias: Mapped[str | None] = mapped_column(String(64), nullable=True)
    from_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# The audit log is append-only at the database level too, where the dialect lets us say so.
for _op in ("UPDATE", "DELETE"):
    event.listen(
        AuditEntry.__table__,
        "after_create",
        DDL(
            f"CREATE TRIGGER IF NOT EXISTS audit_log_no_{_op.lower()} BEFORE {_op} ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        ).execute_if(dialect="sqlite"),
    )


@dataclass(frozen=True)
class AliasMove:
    alias: str
    from_version: str | None
    to_version: str


class Registry:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        create_tables(Base.metadata, self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._session()

    # -- versions -----------------------------------------------------------------------------
    def next_version_name(self) -> str:
        with self.session() as s:
            names = s.scalars(select(ModelVersion.name)).all()
        numbers = [int(m.group(1)) for n in names if (m := VERSION_NAME.match(n))]
        return f"v{max(numbers, default=0) + 1}"

    def register(
        self,
        *,
        name: str,
        source: str,
        artifact_dir: str,
        files: dict[str, str],
        manifest: dict[str, Any],
        metrics: dict[str, Any] | None = None,
        training: dict[str, Any] | None = None,
        parent: str | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        version = ModelVersion(
            name=name,
            source=source,
            artifact_dir=artifact_dir,
            files=files,
            manifest=manifest,
            metrics=metrics or {},
            training=training or {},
            parent=parent,
        )
        with self.session() as s, s.begin():
            s.add(version)
            s.add(AuditEntry(actor=actor or default_actor(), action="register", to_version=name,
                             reason=f"registered from {source}", details={"metrics": metrics or {}}))
            try:
                s.flush()
            except IntegrityError as exc:
                raise RegistryError(f"version {name} already exists") from exc
        return version

    def get(self, name: str) -> ModelVersion:
        with self.session() as s:
            version = s.scalar(select(ModelVersion).where(ModelVersion.name == name))
        if version is None:
            raise RegistryError(f"unknown version {name!r}")
        return version

    def versions(self) -> list[ModelVersion]:
        with self.session() as s:
            return list(s.scalars(select(ModelVersion).order_by(ModelVersion.id)))

    # -- aliases ------------------------------------------------------------------------------
    def alias(self, alias: str) -> str | None:
        with self.session() as s:
            row = s.get(Alias, alias)
        return row.version if row else None

    def aliases(self) -> dict[str, str]:
        with self.session() as s:
            return {a.name: a.version for a in s.scalars(select(Alias))}

    def move_alias(
        self,
        alias: str,
        version: str,
        *,
        action: str = "promote",
        actor: str | None = None,
        reason: str = "",
        details: dict[str, Any] | None = None,
    ) -> AliasMove:
        """Point ``alias`` at ``version`` and write the audit entry, in one transaction."""
        with self.session() as s, s.begin():
            if s.scalar(select(ModelVersion.id).where(ModelVersion.name == version)) is None:
                raise RegistryError(f"unknown version {version!r}")
            row = s.get(Alias, alias, with_for_update=True)
            previous = row.version if row else None
            if row is None:
                s.add(Alias(name=alias, version=version, updated_at=utcnow()))
            else:
                row.version, row.updated_at = version, utcnow()
            s.add(AuditEntry(actor=actor or default_actor(), action=action, alias=alias,
                             from_version=previous, to_version=version, reason=reason,
                             details=details or {}))
        return AliasMove(alias, previous, version)

    def history(self, limit: int | None = None) -> list[AuditEntry]:
        with self.session() as s:
            query = select(AuditEntry).order_by(AuditEntry.id.desc())
            if limit:
                query = query.limit(limit)
            return list(s.scalars(query))
