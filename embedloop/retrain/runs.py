"""Retraining runs: one at a time (a lease with heartbeat), each recorded with its phase.

A run killed at any point leaves a ``running`` row behind and no lease holder; the next run
takes the lease, marks that row ``failed`` and cleans the staging folder.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Column, Float, Integer, MetaData, String, Table, Text, select, update

from embedloop.core.db import create_tables, make_engine
from embedloop.core.lease import Lease

LEASE_NAME = "retrain"
metadata = MetaData()
runs_table = Table(
    "retrain_runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Column("status", String(16), nullable=False),  # running | succeeded | rejected | skipped | failed
    Column("phase", String(32), nullable=False),
    Column("trigger", String(64), nullable=False),
    Column("parent", String(32), nullable=True),
    Column("version", String(32), nullable=True),
    Column("message", Text, nullable=False, default=""),
    Column("details", JSON, nullable=False, default=dict),
)


class RunBusy(Exception):
    """Another retraining run holds the lease."""


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
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        create_tables(metadata, self.engine)

    def start(self, trigger: str, parent: str | None) -> int:
        with self.engine.begin() as conn:
            return conn.execute(runs_table.insert().values(
                started_at=time.time(), status="running", phase="starting", trigger=trigger, parent=parent,
                message="", details={})).inserted_primary_key[0]

    def phase(self, run_id: int, phase: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(runs_table).where(runs_table.c.id == run_id).values(phase=phase))

    def finish(self, run_id: int, status: str, message: str = "", version: str | None = None,
               details: dict[str, Any] | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(runs_table).where(runs_table.c.id == run_id).values(
                status=status, finished_at=time.time(), message=message[:2000], version=version,
                details=details or {}))

    def fail_interrupted(self) -> list[int]:
        """Mark runs left ``running`` as failed; call only while holding the lease."""
        with self.engine.begin() as conn:
            ids = list(conn.execute(select(runs_table.c.id).where(runs_table.c.status == "running")).scalars())
            if ids:
                conn.execute(update(runs_table).where(runs_table.c.id.in_(ids)).values(
                    status="failed", finished_at=time.time(),
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
                                .where(runs_table.c.status.in_(["succeeded", "rejected"]))
                                .order_by(runs_table.c.finished_at.desc()).limit(1)).scalar()


class Heartbeat:
    """Holds a lease for a run, renewing it in the background until released."""

    def __init__(self, url: str, ttl_s: float) -> None:
        self.lease = Lease(url, LEASE_NAME, ttl_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def __enter__(self) -> "Heartbeat":
        if not self.lease.acquire():
            holder = self.lease.current()
            raise RunBusy(f"another retraining run is in progress ({holder[0] if holder else '?'})")
        self._thread = threading.Thread(target=self._beat, name="retrain-lease", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.lease.ttl_s / 3):
            if not self.lease.renew():
                self.lost = True
                return

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.lease.release()
