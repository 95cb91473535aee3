"""Query log: what was asked, of which version, how fast; a sample of texts with their embeddings.

Written off the request path by :class:`QueryLogWriter` (bounded queue, batched transactions);
read by monitoring. Embeddings are stored as float16 bytes.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import (
    Column,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
)

from embedloop.core.settings import Privacy, QueryLogSettings
from embedloop.core.storage.database import add_missing_columns, create_tables

log = logging.getLogger(__name__)

metadata = MetaData()

requests_table = Table(
    "requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ts", Float, nullable=False, index=True),
    Column("version", String(32), nullable=False),
    Column("status", Integer, nullable=False),
    Column("n_texts", Integer, nullable=False),
    Column("n_tokens", Integer, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("key_name", String(64), nullable=True),  # the API key that sent it (None: no keys configured)
)

samples_table = Table(
    "query_samples",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ts", Float, nullable=False, index=True),
    Column("version", String(32), nullable=False, index=True),
    Column("text", Text, nullable=True),
    Column("text_sha256", String(64), nullable=True),
    Column("n_tokens", Integer, nullable=False),
    Column("embedding", LargeBinary, nullable=False),
    Column("key_name", String(64), nullable=True),
)
ADDED_COLUMNS = {"requests": ["key_name"], "query_samples": ["key_name"]}


@dataclass
class SampledText:
    text: str
    n_tokens: int
    embedding: np.ndarray


@dataclass
class LoggedSample:
    ts: float
    text: str | None
    n_tokens: int
    embedding: np.ndarray
    key: str | None = None


@dataclass
class RequestRecord:
    version: str
    status: int
    n_texts: int
    n_tokens: int
    latency_ms: float
    samples: list[SampledText] = field(default_factory=list)
    key: str | None = None  # the API key's name
    ts: float = field(default_factory=time.time)


def sample_row(record: RequestRecord, sample: SampledText, privacy: Privacy) -> dict:
    return {
        "ts": record.ts,
        "version": record.version,
        "text": sample.text if privacy is Privacy.TEXT else None,
        "text_sha256": hashlib.sha256(sample.text.encode()).hexdigest() if privacy is Privacy.HASH else None,
        "n_tokens": sample.n_tokens,
        "embedding": np.asarray(sample.embedding, dtype=np.float16).tobytes(),
        "key_name": record.key,
    }


class QueryLogStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(metadata, engine)
        add_missing_columns(metadata, engine, ADDED_COLUMNS)

    def write(self, records: list[RequestRecord], privacy: Privacy) -> None:
        reqs = [
            {"ts": r.ts, "version": r.version, "status": r.status, "n_texts": r.n_texts,
             "n_tokens": r.n_tokens, "latency_ms": r.latency_ms, "key_name": r.key}
            for r in records
        ]
        samples = [sample_row(r, s, privacy) for r in records for s in r.samples]
        with self.engine.begin() as conn:
            conn.execute(insert(requests_table), reqs)
            if samples:
                conn.execute(insert(samples_table), samples)

    def apply_retention(self, max_age_s: float, max_rows: int, now: float | None = None) -> int:
        """Delete rows older than ``max_age_s`` and beyond the newest ``max_rows``; return rows removed."""
        cutoff = (now or time.time()) - max_age_s
        removed = 0
        with self.engine.begin() as conn:
            for table in (requests_table, samples_table):
                removed += conn.execute(delete(table).where(table.c.ts < cutoff)).rowcount
                count = conn.execute(select(func.count()).select_from(table)).scalar_one()
                if count > max_rows:
                    keep_from = conn.execute(
                        select(table.c.id).order_by(table.c.id.desc()).offset(max_rows - 1).limit(1)
                    ).scalar_one()
                    removed += conn.execute(delete(table).where(table.c.id < keep_from)).rowcount
        return removed

    def sample_ids(self, version: str, since: float | None = None) -> list[int]:
        """Row ids of the logged samples of ``version`` (cheap: no texts, no embeddings)."""
        query = select(samples_table.c.id).where(samples_table.c.version == version).order_by(samples_table.c.id)
        if since is not None:
            query = query.where(samples_table.c.ts > since)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def sample_rows(self, version: str | None = None, since: float | None = None,
                    newest: int | None = None, ids: list[int] | None = None) -> list["LoggedSample"]:
        """Logged samples in arrival order; ``newest`` keeps only the last N (after ``since``);
        ``ids`` restricts them to those rows."""
        query = select(samples_table.c.ts, samples_table.c.text, samples_table.c.n_tokens,
                       samples_table.c.embedding, samples_table.c.key_name).order_by(samples_table.c.id.desc())
        if version is not None:
            query = query.where(samples_table.c.version == version)
        if ids is not None:
            query = query.where(samples_table.c.id.in_(ids))
        if since is not None:
            query = query.where(samples_table.c.ts > since)
        if newest is not None:
            query = query.limit(newest)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [LoggedSample(r.ts, r.text, r.n_tokens, np.frombuffer(r.embedding, dtype=np.float16).astype(np.float32),
                             r.key_name) for r in reversed(rows)]

    def count_requests(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(requests_table)).scalar_one()

    def count_samples(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(samples_table)).scalar_one()


class QueryLogWriter:
    """Bounded, batching, background writer: ``submit`` never blocks; a full queue drops and counts."""

    RETENTION_EVERY_S = 60.0

    def __init__(
        self,
        store: QueryLogStore,
        settings: QueryLogSettings,
        *,
        on_written: Callable[[int], None] = lambda n: None,
        on_dropped: Callable[[int], None] = lambda n: None,
        on_failed: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._queue: queue.Queue[RequestRecord] = queue.Queue(maxsize=settings.queue_size)
        self._on_written, self._on_dropped, self._on_failed = on_written, on_dropped, on_failed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="querylog-writer", daemon=True)
        self._last_retention = 0.0

    def start(self) -> "QueryLogWriter":
        self._thread.start()
        return self

    def depth(self) -> int:
        return self._queue.qsize()

    def submit(self, record: RequestRecord) -> bool:
        try:
            self._queue.put_nowait(record)
            return True
        except queue.Full:
            self._on_dropped(1)
            return False

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued and stop the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        """Collect records for up to ``flush_interval_s`` (or ``batch_size`` of them), then write
        them in one transaction: few commits, little time holding the GIL."""
        batch: list[RequestRecord] = []
        flush_at = None
        while True:
            now = time.monotonic()
            timeout = self.settings.flush_interval_s if flush_at is None else max(0.0, flush_at - now)
            try:
                batch.append(self._queue.get(timeout=timeout))
                if flush_at is None:
                    flush_at = time.monotonic() + self.settings.flush_interval_s
            except queue.Empty:
                pass
            if self._stop.is_set():
                while not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                for start in range(0, len(batch), self.settings.batch_size):
                    self._write(batch[start : start + self.settings.batch_size])
                return
            if batch and (len(batch) >= self.settings.batch_size or time.monotonic() >= flush_at):
                self._write(batch)
                batch, flush_at = [], None
            if time.monotonic() - self._last_retention > self.RETENTION_EVERY_S:
                self._retain()

    def _write(self, batch: list[RequestRecord]) -> None:
        try:
            self.store.write(batch, self.settings.privacy)
            self._on_written(len(batch))
        except Exception:  # a broken disk must not take the service down
            log.exception("query log write of %d records failed", len(batch))
            self._on_failed(len(batch))

    def _retain(self) -> None:
        self._last_retention = time.monotonic()
        try:
            self.store.apply_retention(self.settings.retention_days * 86400, self.settings.retention_max_rows)
        except Exception:
            log.exception("query log retention failed")
