"""Model registry: immutable versions, movable aliases, review states and an append-only audit log.

Every change of an alias or a state is a :class:`Transition`: one transaction that checks what it
expects, moves aliases, sets states and writes the audit entries, or changes nothing.
"""

from __future__ import annotations

import getpass
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from sqlalchemy import DDL, JSON, DateTime, Engine, ForeignKey, Integer, String, Text, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from embedloop.core.storage.database import create_tables

PRODUCTION = "production"
CANDIDATE = "candidate"
VERSION_NAME = re.compile(r"^v(\d+)$")


class VersionState(str, Enum):
    """Where a version stands in review."""

    REGISTERED = "registered"  # exported and checked, never reviewed (e.g. a base model)
    CANDIDATE = "candidate"  # passed its gates, waits for approval
    REJECTED = "rejected"  # failed a gate, or refused by a person
    APPROVED = "approved"  # went to production
    ROLLED_BACK = "rolled_back"  # was production until a rollback


class Action(str, Enum):
    """What an audit entry records."""

    REGISTER = "register"
    INIT = "init"
    PROMOTE = "promote"
    CANDIDATE = "candidate"
    APPROVE = "approve"
    REJECT = "reject"
    ROLLBACK = "rollback"
    KEY_CREATE = "key_create"
    KEY_REVOKE = "key_revoke"
    KEY_QUOTAS = "key_quotas"
    FEEDBACK_PURGE = "feedback_purge"
    CHANNEL_CREATE = "channel_create"
    CHANNEL_FOLLOW = "channel_follow"  # a channel moved with production: the new version is compatible
    CHANNEL_REINDEXED = "channel_reindexed"  # a channel moved after its index was rebuilt
    CHANNEL_DELETE = "channel_delete"
    REINDEX_NEEDED = "reindex_needed"  # production moved to a version a channel cannot follow


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
    """A registry operation that cannot be done (a state that does not allow it, a name taken, …)."""


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
    artifact_dir: Mapped[str] = mapped_column(Text, doc="folder name under the models folder")
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


class StateRow(Base):
    """A version's review state, kept beside the immutable version row; changed only by a
    :class:`Transition`, together with an audit entry."""

    __tablename__ = "version_states"

    version: Mapped[str] = mapped_column(ForeignKey("model_versions.name"), primary_key=True)
    state: Mapped[str] = mapped_column(String(32), doc="a VersionState value")
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# The audit log is append-only in the database itself, on both supported dialects.
for _op in ("UPDATE", "DELETE"):
    event.listen(AuditEntry.__table__, "after_create", DDL(
        f"CREATE TRIGGER IF NOT EXISTS audit_log_no_{_op.lower()} BEFORE {_op} ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END").execute_if(dialect="sqlite"))
event.listen(AuditEntry.__table__, "after_create", DDL(
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$ BEGIN "
    "RAISE EXCEPTION 'audit_log is append-only'; END; $$ LANGUAGE plpgsql").execute_if(dialect="postgresql"))
event.listen(AuditEntry.__table__, "after_create", DDL(
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()").execute_if(dialect="postgresql"))


@dataclass(frozen=True)
class AliasMove:
    alias: str
    from_version: str | None
    to_version: str


class Transition:
    """One audited change, as a transaction: ``with registry.transition(...) as t:`` then
    ``t.expect_state(…)``, ``t.point(alias)``, ``t.drop(alias)``, ``t.set_state(…)``. Checks run
    inside the transaction (rows locked where the database can), so two people approving at once
    cannot both win; anything raised inside the block changes nothing."""

    def __init__(self, session: Session, version: str, action: Action, actor: str, reason: str,
                 details: dict[str, Any]) -> None:
        self.session, self.version, self.action = session, version, action
        self.entry = {"actor": actor, "action": action.value, "reason": reason, "details": details}
        self.moves: list[AliasMove] = []
        self.require_version(version)

    def require_version(self, name: str) -> None:
        if self.session.scalar(select(ModelVersion.id).where(ModelVersion.name == name)) is None:
            raise UnknownVersion(f"unknown version {name!r}")

    def state_of(self, name: str) -> VersionState:
        row = self.session.get(StateRow, name, with_for_update=True)
        return VersionState(row.state) if row else VersionState.REGISTERED

    def expect_state(self, *allowed: VersionState) -> None:
        current = self.state_of(self.version)
        if current not in allowed:
            raise RegistryError(f"{self.version} is {current.value}; {self.action.value} needs it to be "
                                f"{' or '.join(s.value for s in allowed)}")

    def expect_alias(self, alias: str, version: str | None) -> None:
        row = self.session.get(Alias, alias, with_for_update=True)
        if (row.version if row else None) != version:
            raise RegistryError(f"{alias} moved meanwhile (now {row.version if row else None})")

    def alias(self, alias: str) -> str | None:
        row = self.session.get(Alias, alias)
        return row.version if row else None

    def point(self, alias: str, version: str | None = None, action: Action | None = None,
              reason: str | None = None) -> AliasMove:
        """Point ``alias`` at ``version`` (default: this transition's), with an audit entry (its action
        and reason: this transition's unless given)."""
        target = version or self.version
        self.require_version(target)
        row = self.session.get(Alias, alias, with_for_update=True)
        previous = row.version if row else None
        if row is None:
            self.session.add(Alias(name=alias, version=target, updated_at=utcnow()))
        else:
            row.version, row.updated_at = target, utcnow()
        entry = {**self.entry, **({"action": action.value} if action else {}),
                 **({"reason": reason} if reason is not None else {})}
        self.session.add(AuditEntry(**entry, alias=alias, from_version=previous, to_version=target))
        move = AliasMove(alias, previous, target)
        self.moves.append(move)
        return move

    def record(self, action: Action, reason: str, details: dict[str, Any], alias: str | None = None,
               from_version: str | None = None, to_version: str | None = None) -> None:
        """An audit entry beside this transition's own (e.g. a channel that could not follow)."""
        self.session.add(AuditEntry(actor=self.entry["actor"], action=action.value, reason=reason, details=details,
                                    alias=alias, from_version=from_version, to_version=to_version))

    def drop(self, alias: str) -> None:
        """Remove ``alias`` if it points at this transition's version."""
        row = self.session.get(Alias, alias)
        if row is not None and row.version == self.version:
            self.session.delete(row)

    def set_state(self, state: VersionState, version: str | None = None, reasons: list[str] | None = None) -> None:
        name = version or self.version
        self.require_version(name)
        row = self.session.get(StateRow, name, with_for_update=True)
        if row is None:
            self.session.add(StateRow(version=name, state=state.value, reasons=list(reasons or []),
                                      updated_at=utcnow()))
            return
        row.state, row.updated_at = state.value, utcnow()
        if reasons is not None:
            row.reasons = list(reasons)

    def finish(self) -> None:
        if not self.moves:  # a change of state only: one entry for the version
            self.session.add(AuditEntry(**self.entry, to_version=self.version))


class _TransitionContext:
    def __init__(self, registry: "Registry", version: str, action: Action, actor: str | None, reason: str,
                 details: dict[str, Any] | None) -> None:
        self.args = (version, action, actor or default_actor(), reason, details or {})
        self.registry = registry

    def __enter__(self) -> Transition:
        self.session = self.registry.session()
        self.session.begin()
        self.transition = Transition(self.session, *self.args)
        return self.transition

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        try:
            if exc_type is None:
                self.transition.finish()
                self.session.commit()
            else:
                self.session.rollback()
        finally:
            self.session.close()


class Registry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(Base.metadata, engine)
        self._session = sessionmaker(engine, expire_on_commit=False)

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
        state: VersionState = VersionState.REGISTERED,
        reasons: list[str] | None = None,
    ) -> ModelVersion:
        version = ModelVersion(name=name, source=source, artifact_dir=artifact_dir, files=files, manifest=manifest,
                               metrics=metrics or {}, training=training or {}, parent=parent)
        suffix = f" as {state.value}" if state is not VersionState.REGISTERED else ""
        with self.session() as s, s.begin():
            s.add(version)
            s.add(StateRow(version=name, state=state.value, reasons=list(reasons or []), updated_at=utcnow()))
            s.add(AuditEntry(actor=actor or default_actor(), action=Action.REGISTER.value, to_version=name,
                             reason=f"registered from {source}{suffix}",
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

    def state(self, name: str) -> StateRow | None:
        with self.session() as s:
            return s.get(StateRow, name)

    def states(self) -> dict[str, StateRow]:
        with self.session() as s:
            return {st.version: st for st in s.scalars(select(StateRow))}

    # -- aliases and moves ---------------------------------------------------------------------
    def alias(self, alias: str) -> str | None:
        with self.session() as s:
            row = s.get(Alias, alias)
        return row.version if row else None

    def aliases(self) -> dict[str, str]:
        with self.session() as s:
            return {a.name: a.version for a in s.scalars(select(Alias))}

    def alias_moved_at(self, alias: str) -> float | None:
        """When ``alias`` last moved, as a Unix time."""
        with self.session() as s:
            row = s.get(Alias, alias)
        return utc_epoch(row.updated_at) if row is not None else None

    def transition(self, version: str, action: Action, *, actor: str | None = None, reason: str = "",
                   details: dict[str, Any] | None = None) -> _TransitionContext:
        return _TransitionContext(self, version, action, actor, reason, details)

    def move_alias(self, alias: str, version: str, *, action: Action = Action.PROMOTE, actor: str | None = None,
                   reason: str = "", details: dict[str, Any] | None = None) -> AliasMove:
        """Point ``alias`` at ``version`` with its audit entry (the low-level move: no state checks)."""
        with self.transition(version, action, actor=actor, reason=reason, details=details) as t:
            return t.point(alias)

    def audit(self, action: Action, *, actor: str | None = None, reason: str = "",
              details: dict[str, Any] | None = None) -> None:
        """An audit entry for a change outside the registry's own tables (e.g. purged feedback)."""
        with self.session() as s, s.begin():
            s.add(AuditEntry(actor=actor or default_actor(), action=action.value, reason=reason,
                             details=details or {}))

    def history(self, limit: int | None = None, version: str | None = None) -> list[AuditEntry]:
        """Newest first; ``version``: only entries that moved or registered it."""
        with self.session() as s:
            query = select(AuditEntry).order_by(AuditEntry.id.desc())
            if version is not None:
                query = query.where((AuditEntry.from_version == version) | (AuditEntry.to_version == version))
            if limit:
                query = query.limit(limit)
            return list(s.scalars(query))
