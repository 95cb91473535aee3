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
CANDIDATE = "candidate"
VERSION_NAME = re.compile(r"^v(\d+)$")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def utc_epoch(moment: datetime) -> float:
    """A registry time as a Unix time: SQLite hands datetimes back naive; they are UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


class RegistryError(Exception):
    """A registry operation that cannot be done (unknown version, bad name, …)."""


class UnknownVersion(RegistryError):
    """No version of that name is registered."""


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


class VersionState(Base):
    """Where a version stands in review: registered | candidate | rejected | approved | rolled_back.

    Kept beside the immutable version row; it changes only together with an audit entry."""

    __tablename__ = "version_states"

    version: Mapped[str] = mapped_column(ForeignKey("model_versions.name"), primary_key=True)
    state: Mapped[str] = mapped_column(String(32))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


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
        state: str = "registered",
        reasons: list[str] | None = None,
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
            s.add(VersionState(version=name, state=state, reasons=list(reasons or []), updated_at=utcnow()))
            s.add(AuditEntry(actor=actor or default_actor(), action="register", to_version=name,
                             reason=f"registered from {source}" + (f" as {state}" if state != "registered" else ""),
                             details={"metrics": metrics or {}, "reasons": list(reasons or [])}))
            try:
                s.flush()
            except IntegrityError as exc:
                raise RegistryError(f"version {name} already exists") from exc
        return version

    def get(self, name: str) -> ModelVersion:
        with self.session() as s:
            version = s.scalar(select(ModelVersion).where(ModelVersion.name == name))
        if version is None:
            raise UnknownVersion(f"unknown version {name!r}")
        return version

    def versions(self) -> list[ModelVersion]:
        with self.session() as s:
            return list(s.scalars(select(ModelVersion).order_by(ModelVersion.id)))

    def state(self, name: str) -> VersionState | None:
        with self.session() as s:
            return s.get(VersionState, name)

    def states(self) -> dict[str, VersionState]:
        with self.session() as s:
            return {st.version: st for st in s.scalars(select(VersionState))}

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
        return self.transition(version, action=action, actor=actor, reason=reason, details=details,
                               point={alias: version})[0]

    def transition(
        self,
        version: str,
        *,
        action: str,
        actor: str | None = None,
        reason: str = "",
        details: dict[str, Any] | None = None,
        point: dict[str, str] | None = None,
        drop: tuple[str, ...] = (),
        state: str | None = None,
        reasons: list[str] | None = None,
        other_states: dict[str, str] | None = None,
        expect_states: tuple[str, ...] | None = None,
        expect_alias: tuple[str, str | None] | None = None,
    ) -> list[AliasMove]:
        """Move aliases, drop aliases and set ``version``'s state, with one audit entry per alias
        moved (or one for the state change), all in one transaction. ``expect_*`` are checked
        inside it, so two people approving at once cannot both win."""
        point, moves = point or {}, []
        with self.session() as s, s.begin():
            for name in {version, *point.values(), *(other_states or {})}:
                if s.scalar(select(ModelVersion.id).where(ModelVersion.name == name)) is None:
                    raise UnknownVersion(f"unknown version {name!r}")
            current = s.get(VersionState, version, with_for_update=True)
            if expect_states is not None and (current.state if current else "registered") not in expect_states:
                raise RegistryError(f"{version} is {current.state if current else 'registered'}; "
                                    f"{action} needs it to be {' or '.join(expect_states)}")
            if expect_alias is not None:
                row = s.get(Alias, expect_alias[0])
                if (row.version if row else None) != expect_alias[1]:
                    raise RegistryError(f"{expect_alias[0]} moved meanwhile (now {row.version if row else None})")
            entry = {"actor": actor or default_actor(), "action": action, "reason": reason,
                     "details": details or {}}
            for alias, target in point.items():
                row = s.get(Alias, alias, with_for_update=True)
                previous = row.version if row else None
                if row is None:
                    s.add(Alias(name=alias, version=target, updated_at=utcnow()))
                else:
                    row.version, row.updated_at = target, utcnow()
                s.add(AuditEntry(**entry, alias=alias, from_version=previous, to_version=target))
                moves.append(AliasMove(alias, previous, target))
            for alias in drop:
                row = s.get(Alias, alias)
                if row is not None and alias not in point:
                    s.delete(row)
            changes = {**(other_states or {}), **({version: state} if state is not None else {})}
            for name, new_state in changes.items():
                row = current if name == version else s.get(VersionState, name, with_for_update=True)
                if row is None:
                    s.add(VersionState(version=name, state=new_state, updated_at=utcnow(),
                                       reasons=list(reasons or []) if name == version else []))
                else:
                    row.state, row.updated_at = new_state, utcnow()
                    if reasons is not None and name == version:
                        row.reasons = list(reasons)
            if not point:
                s.add(AuditEntry(**entry, to_version=version))
        return moves

    def alias_moved_at(self, alias: str) -> float | None:
        """When ``alias`` last moved, as a Unix time (SQLite hands datetimes back naive; they are UTC)."""
        with self.session() as s:
            row = s.get(Alias, alias)
        return utc_epoch(row.updated_at) if row is not None else None

    def history(self, limit: int | None = None) -> list[AuditEntry]:
        with self.session() as s:
            query = select(AuditEntry).order_by(AuditEntry.id.desc())
            if limit:
                query = query.limit(limit)
            return list(s.scalars(query))
