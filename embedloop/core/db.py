"""Database engines: one function so every store gets the same SQLite tuning, and one engine
(one connection pool) per database and process however many stores open it."""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.exc import OperationalError

MAX_CACHED_ENGINES = 16
_engines: OrderedDict[tuple[int, str], tuple[Engine, int | None]] = OrderedDict()
_engines_lock = threading.Lock()


def _sqlite_path(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def _sqlite_inode(url: str) -> int | None:
    path = _sqlite_path(url)
    try:
        return path.stat().st_ino if path is not None else None
    except FileNotFoundError:
        return None


def make_engine(url: str) -> Engine:
    """The process's engine for ``url`` (created on first use). Stores are opened often — every
    scheduled check, every CLI call — so they share one pool instead of each opening its own. A
    SQLite file that was deleted or replaced since gets a fresh engine, not one whose connections
    still point at the old file."""
    key = (os.getpid(), url)  # a forked child must not use its parent's connections
    with _engines_lock:
        cached = _engines.get(key)
        inode = _sqlite_inode(url)
        if cached is not None and (cached[1] is None or cached[1] == inode):
            _engines.move_to_end(key)
            return cached[0]
        if cached is not None:
            cached[0].dispose()
        engine = _new_engine(url)
        if inode is None and _sqlite_path(url) is not None:
            with engine.connect():  # create the file now so its identity can be remembered
                pass
            inode = _sqlite_inode(url)
        _engines[key] = (engine, inode)
        while len(_engines) > MAX_CACHED_ENGINES:
            # Still usable by whoever holds it (the pool reopens on demand); only idle connections close.
            _engines.popitem(last=False)[1][0].dispose()
        return engine


def _new_engine(url: str) -> Engine:
    path = _sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def create_tables(metadata: MetaData, engine: Engine, attempts: int = 5) -> None:
    """``metadata.create_all`` that tolerates another process creating the same tables at the
    same moment (several server workers, or the service and the daemon, starting on a new folder)."""
    for attempt in range(attempts):
        try:
            metadata.create_all(engine)
            return
        except OperationalError as exc:
            if "already exists" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
