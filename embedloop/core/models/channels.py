"""Index channels: what a client that stores document vectors binds to.

A channel is an alias (``embedloop@index-main``) plus the version its stored vectors were built
with. Its rule: it serves only versions whose queries work against those vectors — the version
itself, or one whose gates measured it compatible with exactly that version
(:mod:`embedloop.core.evaluation.compatibility`). When production moves, each channel either
follows (compatible) or holds and the audit log says ``reindex_needed``; after the client's index
is rebuilt with a new version, ``reindexed`` moves the channel and its vectors' version together.
Every change is part of the same audited registry transaction as the production move.

A channel created with ``adapt`` follows a version it cannot follow plainly through that version's
query adapter into its vectors' space (``v2~v1``, :mod:`embedloop.core.models.adapters`), when the
gates registered one: registered only when it retrieved more from those vectors than their own
version does, so the channel's clients gain without reindexing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, String, select
from sqlalchemy.orm import Mapped, mapped_column

from embedloop.core.models.adapters import adapter_name, adapters_of
from embedloop.core.models.registry import (
    CANDIDATE,
    PRODUCTION,
    VERSION_NAME,
    Action,
    Alias,
    Base,
    ModelVersion,
    Registry,
    RegistryError,
    Transition,
    utcnow,
)
from embedloop.core.storage.database import add_missing_columns, create_tables

NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


class UnknownChannel(RegistryError):
    pass


class ChannelRow(Base):
    __tablename__ = "channels"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    built_with: Mapped[str] = mapped_column(ForeignKey("model_versions.name"),
                                            doc="the version that embedded the channel's stored documents")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    adapt: Mapped[bool | None] = mapped_column(Boolean, default=False, doc="when it cannot follow production, it "
                                               "follows through production's query adapter into its vectors' space")
    adapted: Mapped[bool | None] = mapped_column(Boolean, default=False,
                                                 doc="its version's queries are served through that adapter")


@dataclass(frozen=True)
class Channel:
    name: str
    serves: str  # what embeds the channel's queries: a version, or a version's adapter (v2~v1)
    built_with: str  # the version that embedded its stored documents
    created_at: datetime
    adapt: bool = False  # it may follow production through a query adapter


@dataclass(frozen=True)
class Held:
    """A channel that could not follow production."""

    channel: str
    serves: str
    built_with: str
    production: str
    why: str
    adapter: str | None = None  # a query adapter the channel's clients can use until they reindex


def compatible_with(version: ModelVersion, built_with: str) -> tuple[bool, str]:
    """Whether ``version``'s queries work against vectors built by ``built_with``, and why."""
    if version.name == built_with:
        return True, "the version that built the vectors"
    gates = version.metrics.get("gates") or {}
    figures = gates.get("compatibility")
    if not figures or gates.get("against") != built_with:
        return False, f"{version.name} was not measured against {built_with}'s vectors"
    metric = figures["metric"]
    cross, older = figures["cross"][metric], figures["older"][metric]
    if not figures["compatible"]:
        return False, f"{version.name}'s queries against {built_with}'s vectors: {metric} {cross:.4f} < {older:.4f}"
    return True, f"{version.name}'s queries against {built_with}'s vectors: {metric} {cross:.4f} ≥ {older:.4f}"


def adapter_offer(version: ModelVersion, built_with: str) -> tuple[str, str] | None:
    """``version``'s query adapter into ``built_with``'s space, if one is registered: its model name
    and what it measured — what a held channel's clients can use until they reindex."""
    if built_with not in adapters_of(version):
        return None
    figures = version.metrics["gates"]["compatibility"]
    metric, name = figures["metric"], adapter_name(version.name, built_with)
    return name, (f"embedloop@{name} (its queries rotated into {built_with}'s space) retrieves {metric} "
                  f"{figures['adapter']['cross'][metric]:.4f} from {built_with}'s vectors")


class Channels:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        create_tables(Base.metadata, registry.engine)
        add_missing_columns(Base.metadata, registry.engine, {"channels": ["adapt", "adapted"]})

    def list(self) -> list[Channel]:
        with self.registry.session() as s:
            rows = s.execute(select(ChannelRow, Alias.version).join(Alias, Alias.name == ChannelRow.name)
                             .order_by(ChannelRow.name)).all()
        return [Channel(row.name, adapter_name(version, row.built_with) if row.adapted else version, row.built_with,
                        row.created_at, bool(row.adapt)) for row, version in rows]

    def get(self, name: str) -> Channel:
        found = [c for c in self.list() if c.name == name]
        if not found:
            raise UnknownChannel(f"no channel {name!r}")
        return found[0]

    def targets(self) -> dict[str, str]:
        """Channel name -> the version it serves (what the service resolves ``embedloop@<name>`` to)."""
        return {c.name: c.serves for c in self.list()}

    def create(self, name: str, version: str | None = None, *, adapt: bool = False, actor: str | None = None,
               reason: str = "") -> Channel:
        """A channel whose vectors are built with ``version`` (default: production); ``adapt``: when it
        cannot follow production, it follows through production's query adapter into ``version``'s
        space, if the gates registered one."""
        if not NAME.match(name) or VERSION_NAME.match(name) or name in (PRODUCTION, CANDIDATE):
            raise RegistryError(f"invalid channel name {name!r}: lower-case letters, digits and '-', not a version "
                                "name, production or candidate")
        version = version or self.registry.alias(PRODUCTION)
        if version is None:
            raise RegistryError("nothing is in production: name the version the channel's vectors are built with")
        with self.registry.transition(version, Action.CHANNEL_CREATE, actor=actor, reason=reason) as t:
            if t.alias(name) is not None:
                raise RegistryError(f"{name!r} already exists")
            t.point(name)
            t.session.add(ChannelRow(name=name, built_with=version, created_at=utcnow(), adapt=adapt, adapted=False))
        return self.get(name)

    def reindexed(self, name: str, version: str, *, actor: str | None = None, reason: str = "") -> Channel:
        """The channel's documents were embedded again with ``version``: it serves and is built with it."""
        with self.registry.transition(version, Action.CHANNEL_REINDEXED, actor=actor, reason=reason) as t:
            row = t.session.get(ChannelRow, name, with_for_update=True)
            if row is None:
                raise UnknownChannel(f"no channel {name!r}")
            t.point(name)
            row.built_with, row.adapted = version, False
        return self.get(name)

    def delete(self, name: str, *, actor: str | None = None, reason: str = "") -> None:
        channel = self.get(name)
        with self.registry.transition(channel.serves, Action.CHANNEL_DELETE, actor=actor, reason=reason,
                                      details={"channel": name, "built_with": channel.built_with}) as t:
            t.session.delete(t.session.get(ChannelRow, name))
            t.session.delete(t.session.get(Alias, name))

    def follow(self, t: Transition, production: str) -> list[Held]:
        """Inside the transition that moves production to ``production``: move every channel that may
        follow, record every one that may not. Returns the held ones."""
        version = t.session.scalar(select(ModelVersion).where(ModelVersion.name == production))
        held = []
        for row in t.session.scalars(select(ChannelRow).order_by(ChannelRow.name)).all():
            serves = t.alias(row.name)
            if serves == production:
                continue
            ok, why = compatible_with(version, row.built_with)
            if ok:
                t.point(row.name, production, action=Action.CHANNEL_FOLLOW, reason=why)
                row.adapted = False
                continue
            adapter = adapter_offer(version, row.built_with)
            if adapter and row.adapt:  # registered only if it beats the built_with version's own figure
                t.point(row.name, production, action=Action.CHANNEL_FOLLOW,
                        reason=f"{why}; follows through {adapter[1]}")
                row.adapted = True
                continue
            shown = adapter_name(serves, row.built_with) if row.adapted else serves
            held.append(Held(row.name, shown, row.built_with, production, why, adapter[0] if adapter else None))
            t.record(Action.REINDEX_NEEDED, f"{row.name} stays on {shown}: {why}; rebuild its index with "
                     f"{production}, then `embedloop channels reindexed {row.name} --to {production}`"
                     + (f"; meanwhile {adapter[1]}" if adapter else ""),
                     {"channel": row.name, "built_with": row.built_with, "production": production,
                      "adapter": adapter[0] if adapter else None},
                     alias=row.name, from_version=serves, to_version=production)
        return held
