import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, UniqueConstraint, func, select

from embedloop.core.storage.database import StorageError, create_tables, insert_new, open_engine

metadata = MetaData()
pairs = Table("pairs", metadata, Column("id", Integer, primary_key=True), Column("a", String(8)),
              Column("b", String(8)), UniqueConstraint("a", "b"))


def test_insert_new_skips_existing_keys_and_counts_only_new_rows(engine):
    create_tables(metadata, engine)
    create_tables(metadata, engine)  # a second start on the same database changes nothing
    with engine.begin() as conn:
        assert insert_new(conn, pairs, {"a": "x", "b": "y"}) == 1
        assert insert_new(conn, pairs, {"a": "x", "b": "y"}) == 0
        assert insert_new(conn, pairs, [{"a": "x", "b": "y"}, {"a": "x", "b": "z"}, {"a": "x", "b": "z"}]) == 1
        assert insert_new(conn, pairs, []) == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(pairs)).scalar_one() == 2


def test_sqlite_runs_in_wal_mode(tmp_path):
    engine = open_engine(f"sqlite:///{tmp_path / 'deep' / 'state.db'}")  # folders are created
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_other_databases_are_refused_with_a_message():
    pytest.importorskip("sqlalchemy.dialects.mysql")
    with pytest.raises((StorageError, ModuleNotFoundError)):
        open_engine("mysql://nobody@127.0.0.1/none")
