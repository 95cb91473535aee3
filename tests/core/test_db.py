import sqlite3

from sqlalchemy import text

from embedloop.core import db
from embedloop.core.registry import Registry


def test_stores_on_one_database_share_one_engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    assert db.make_engine(url) is db.make_engine(url)
    assert Registry(url).engine is Registry(url).engine
    assert db.make_engine(f"sqlite:///{tmp_path / 'other.db'}") is not db.make_engine(url)


def test_a_replaced_file_gets_a_fresh_engine(tmp_path):
    path = tmp_path / "state.db"
    url = f"sqlite:///{path}"
    old = db.make_engine(url)
    with old.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    old.dispose()
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)  # e.g. a state folder deleted and made again
    new = db.make_engine(url)
    assert new is not old
    with new.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (7)"))
    new.dispose()  # checkpoint the WAL so a plain sqlite3 reader sees the row
    assert sqlite3.connect(path).execute("SELECT x FROM t").fetchall() == [(7,)]


def test_an_evicted_engine_keeps_working(tmp_path):
    first = db.make_engine(f"sqlite:///{tmp_path / 'first.db'}")
    for i in range(db.MAX_CACHED_ENGINES + 2):
        db.make_engine(f"sqlite:///{tmp_path / f'{i}.db'}")
    with first.begin() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    assert db.make_engine(f"sqlite:///{tmp_path / 'first.db'}") is not first  # it was evicted
