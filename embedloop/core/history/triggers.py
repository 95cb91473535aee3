"""Retraining triggers: what a check asked for, and what became of it."""

from __future__ import annotations

import json
import time
from enum import Enum

from sqlalchemy import JSON, Column, Engine, Float, Integer, MetaData, String, Table, select

from embedloop.core.storage.database import create_tables


class TriggerStatus(str, Enum):
    OPEN = "open"  # handed to retraining
    SUPPRESSED = "suppressed"  # inside the cooldown after the last one
    HANDLED = "handled"
    FAILED = "failed"


metadata = MetaData()
triggers_table = Table(
    "triggers", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Float, nullable=False, index=True),
    Column("reason", String(32), nullable=False),  # drift | probe_recall
    Column("version", String(32), nullable=False),
    Column("figures", JSON, nullable=False),
    Column("status", String(32), nullable=False),  # a TriggerStatus value
    Column("note", String(500), nullable=True),
)


class TriggerStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(metadata, engine)

    def add(self, reason: str, version: str, figures: dict, status: TriggerStatus, note: str | None = None) -> int:
        with self.engine.begin() as conn:
            return conn.execute(triggers_table.insert().values(
                at=time.time(), reason=reason, version=version, figures=json.loads(json.dumps(figures)),
                status=status.value, note=note)).inserted_primary_key[0]

    def set_status(self, trigger_id: int, status: TriggerStatus, note: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(triggers_table.update().where(triggers_table.c.id == trigger_id)
                         .values(status=status.value, note=note))

    def recent(self, limit: int = 50, status: TriggerStatus | None = None) -> list:
        query = select(triggers_table).order_by(triggers_table.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(triggers_table.c.status == status.value)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def last_acted_at(self) -> float | None:
        """When a trigger last went to retraining (the cooldown starts there)."""
        acted = (TriggerStatus.OPEN.value, TriggerStatus.HANDLED.value, TriggerStatus.FAILED.value)
        with self.engine.connect() as conn:
            return conn.execute(select(triggers_table.c.at).where(triggers_table.c.status.in_(acted))
                                .order_by(triggers_table.c.id.desc()).limit(1)).scalar()
