"""Retraining runs, each recorded with its phase while it runs and its result when it ends.

A run killed at any point leaves a ``running`` row behind; the next run (holding the retraining
lease, so no other run is alive) marks that row ``failed``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import JSON, Column, Engine, Float, Integer, MetaData, String, Table, Text, select, update

from embedloop.core.storage.database import create_tables


class RunStatus(str, Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # registered a candidate
    REJECTED = "rejected"  # registered a version that failed its gates
    FAILED = "failed"


metadata = MetaData()
runs_table = Table(
    "retrain_runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Column("status", String(16), nullable=False),  # a RunStatus value
    Column("phase", String(32), nullable=False),
    Column("trigger", String(64), nullable=False),
    Column("parent", String(32), nullable=True),
    Column("version", String(32), nullable=True),
    Column("message", Text, nullable=False, default=""),
    Column("details", JSON, nullable=False, default=dict),
)


@dataclass
class RunRecord:
    id: int
    started_at: float
    finished_at: float | None
    status: str
    phase: str
    trigger: str
    parent: str | None
    version: str | None
    message: str
    details: dict[str, Any]


class RunStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(metadata, engine)

    def start(self, trigger: str, parent: str | None) -> int:
        with self.engine.begin() as conn:
            return conn.execute(runs_table.insert().values(
                started_at=time.time(), status=RunStatus.RUNNING.value, phase="starting", trigger=trigger,
                parent=parent, message="", details={})).inserted_primary_key[0]

    def phase(self, run_id: int, phase: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(runs_table).where(runs_table.c.id == run_id).values(phase=phase))

    def finish(self, run_id: int, status: RunStatus, message: str = "", version: str | None = None,
               details: dict[str, Any] | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(runs_table).where(runs_table.c.id == run_id).values(
                status=status.value, finished_at=time.time(), message=message[:2000], version=version,
                details=details or {}))

    def fail_interrupted(self) -> list[int]:
        """Mark runs left ``running`` as failed; call only while holding the lease."""
        with self.engine.begin() as conn:
            ids = list(conn.execute(select(runs_table.c.id)
                                    .where(runs_table.c.status == RunStatus.RUNNING.value)).scalars())
            if ids:
                conn.execute(update(runs_table).where(runs_table.c.id.in_(ids)).values(
                    status=RunStatus.FAILED.value, finished_at=time.time(),
                    message="interrupted (the process stopped before the run finished)"))
        return ids

    def runs(self, limit: int | None = None) -> list[RunRecord]:
        query = select(runs_table).order_by(runs_table.c.id.desc())
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [RunRecord(**row._mapping) for row in conn.execute(query)]

    def last_ended_at(self) -> float | None:
        """When the last run that produced a version ended (skipped and failed runs do not count)."""
        with self.engine.connect() as conn:
            return conn.execute(select(runs_table.c.finished_at)
                                .where(runs_table.c.status.in_([RunStatus.SUCCEEDED.value, RunStatus.REJECTED.value]))
                                .order_by(runs_table.c.finished_at.desc()).limit(1)).scalar()
