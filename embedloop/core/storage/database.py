"""The storage layer every store shares: engines with the same tuning, table creation that
tolerates a concurrent start, and insert-or-ignore. SQLite and PostgreSQL are supported and
tested; a store gets its engine from :class:`embedloop.core.state.State`, which opens one per
database and process."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

SUPPORTED = ("sqlite", "postgresql")


class StorageError(Exception):
    """A database URL that cannot be used."""


def sqlite_path(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def open_engine(url: str) -> Engine:
    """An engine for ``url``: SQLite in WAL mode with a busy timeout, or PostgreSQL."""
    path = sqlite_path(url)
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
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name not in SUPPORTED:
        engine.dispose()
        raise StorageError(f"{engine.dialect.name} databases are not supported (use sqlite or postgresql)")
    return engine


def create_tables(metadata: MetaData, engine: Engine, attempts: int = 5) -> None:
    """``metadata.create_all`` that tolerates another process creating the same tables at the
    same moment (several server workers, or the service and the daemon, starting on a new folder)."""
    for attempt in range(attempts):
        try:
            metadata.create_all(engine)
            return
        except (OperationalError, ProgrammingError, IntegrityError) as exc:
            # SQLite: "already exists"; PostgreSQL: a duplicate in pg_type when two CREATE TABLEs race.
            racing = any(sign in str(exc) for sign in ("already exists", "duplicate key", "concurrently"))
            if not racing or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def add_missing_columns(metadata: MetaData, engine: Engine, added: dict[str, list[str]]) -> None:
    """Columns added to ``metadata``'s tables since a database was created (nullable ones, so old
    rows stay valid); another process adding the same column at the same moment is fine."""
    inspector = inspect(engine)
    for table, columns in added.items():
        present = {c["name"] for c in inspector.get_columns(table)}
        for name in columns:
            if name in present:
                continue
            type_ = metadata.tables[table].c[name].type.compile(dialect=engine.dialect)
            try:
                with engine.begin() as conn:
                    conn.execute(text(f'ALTER TABLE {table} ADD COLUMN "{name}" {type_}'))
            except (OperationalError, ProgrammingError) as exc:
                if "duplicate column" not in str(exc) and "already exists" not in str(exc):
                    raise


def insert_new(conn: Connection, table: Table, rows: dict | list[dict]) -> int:
    """Insert the rows whose key (or unique constraint) is new, skip the others; return how many
    were inserted. (``INSERT … ON CONFLICT DO NOTHING RETURNING``: ``rowcount`` is not reliable
    for it on every driver.)"""
    rows = [rows] if isinstance(rows, dict) else rows
    if not rows:
        return 0
    dialect = {"sqlite": sqlite, "postgresql": postgresql}[conn.dialect.name]
    key = list(table.primary_key.columns)
    return len(conn.execute(dialect.insert(table).on_conflict_do_nothing().returning(*key), rows).all())
