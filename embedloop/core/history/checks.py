"""What the checks remember: drift references and every drift and probe run."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import JSON, Boolean, Column, Engine, Float, Integer, LargeBinary, MetaData, String, Table, select

from embedloop.core.storage.database import create_tables

metadata = MetaData()

references_table = Table(
    "drift_references", metadata,
    Column("id", Integer, primary_key=True),
    Column("version", String(32), nullable=False, index=True),
    Column("built_at", Float, nullable=False),
    Column("origin", String(16), nullable=False),  # traffic | probes
    Column("embeddings", LargeBinary, nullable=False),  # float16, row-major
    Column("dimensions", Integer, nullable=False),
    Column("lengths", JSON, nullable=False),
)
drift_runs_table = Table(
    "drift_runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Float, nullable=False, index=True),
    Column("version", String(32), nullable=False),
    Column("window_end", Float, nullable=False),  # newest query time in the window
    Column("window_drifted", Boolean, nullable=False),
    Column("declared", Boolean, nullable=False),
    Column("figures", JSON, nullable=False),
)
probe_runs_table = Table(
    "probe_runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Float, nullable=False, index=True),
    Column("version", String(32), nullable=False, index=True),
    Column("metrics", JSON, nullable=False),
    Column("groups", JSON, nullable=False),
    Column("alarm", String(200), nullable=True),
)
@dataclass
class Reference:
    version: str
    built_at: float
    origin: str
    embeddings: np.ndarray
    lengths: np.ndarray


class CheckStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(metadata, engine)

    # -- references -----------------------------------------------------------------------------
    def save_reference(self, version: str, embeddings: np.ndarray, lengths: np.ndarray, origin: str) -> Reference:
        ref = Reference(version, time.time(), origin, embeddings.astype(np.float32), np.asarray(lengths))
        with self.engine.begin() as conn:
            conn.execute(references_table.insert().values(
                version=version, built_at=ref.built_at, origin=origin, dimensions=int(embeddings.shape[1]),
                embeddings=embeddings.astype(np.float16).tobytes(), lengths=[int(x) for x in lengths]))
        return ref

    def reference(self, version: str) -> Reference | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(references_table).where(references_table.c.version == version)
                               .order_by(references_table.c.id.desc()).limit(1)).first()
        if row is None:
            return None
        emb = np.frombuffer(row.embeddings, dtype=np.float16).reshape(-1, row.dimensions).astype(np.float32)
        return Reference(row.version, row.built_at, row.origin, emb, np.asarray(row.lengths))

    # -- runs -------------------------------------------------------------------------------------
    def add_drift_run(self, version: str, window_end: float, window_drifted: bool, declared: bool,
                      figures: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(drift_runs_table.insert().values(at=time.time(), version=version, window_end=window_end,
                                                          window_drifted=window_drifted, declared=declared,
                                                          figures=json.loads(json.dumps(figures))))

    def drift_runs(self, version: str | None = None, limit: int = 100) -> list:
        query = select(drift_runs_table).order_by(drift_runs_table.c.id.desc()).limit(limit)
        if version is not None:
            query = query.where(drift_runs_table.c.version == version)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def add_probe_run(self, version: str, metrics: dict, groups: dict, alarm: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(probe_runs_table.insert().values(at=time.time(), version=version, metrics=metrics,
                                                          groups=groups, alarm=alarm))

    def first_probe_run(self, version: str):
        """The version's first probe check (its baseline), or None."""
        with self.engine.connect() as conn:
            return conn.execute(select(probe_runs_table).where(probe_runs_table.c.version == version)
                                .order_by(probe_runs_table.c.id).limit(1)).first()

    def probe_runs(self, version: str | None = None, limit: int = 100) -> list:
        query = select(probe_runs_table).order_by(probe_runs_table.c.id.desc()).limit(limit)
        if version is not None:
            query = query.where(probe_runs_table.c.version == version)
        with self.engine.connect() as conn:
            return list(conn.execute(query))
