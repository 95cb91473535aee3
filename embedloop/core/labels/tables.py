"""The labels database: documents, probe queries with their relevant documents, feedback, and the
installation's secrets.

One metadata, so that one transaction can decide where a feedback record goes (probe set or
training pairs) and check the documents it names.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    text,
)

from embedloop.core.storage.database import add_missing_columns, create_tables

metadata = MetaData()

documents_table = Table(
    "documents", metadata,
    Column("doc_id", String(256), primary_key=True),
    Column("text", Text, nullable=False),
    Column("added_at", Float, nullable=False),
)
probe_queries_table = Table(
    "probe_queries", metadata,
    Column("query_id", String(256), primary_key=True),
    Column("text", Text, nullable=False),
    Column("group", String(128), nullable=False),
    Column("origin", String(32), nullable=False),  # import | feedback
    Column("added_at", Float, nullable=False),
    Column("key_name", String(64), nullable=True),  # the API key that sent it (feedback over HTTP)
)
probe_qrels_table = Table(
    "probe_qrels", metadata,
    Column("id", Integer, primary_key=True),
    Column("query_id", String(256), nullable=False, index=True),
    Column("doc_id", String(256), nullable=False),
    Column("key_name", String(64), nullable=True),  # the API key whose feedback added this judgement
    UniqueConstraint("query_id", "doc_id"),
)
feedback_table = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True),  # increasing: a run takes the ids above its parent's
    Column("query_hash", String(64), nullable=False),
    Column("query", Text, nullable=False),
    Column("doc_id", String(256), nullable=False),
    Column("negative_ids", JSON, nullable=False),
    Column("group", String(128), nullable=False),
    Column("origin", String(32), nullable=False),
    Column("added_at", Float, nullable=False),
    Column("key_name", String(64), nullable=True, index=True),  # the API key that sent it (feedback over HTTP)
    Column("purged_at", Float, nullable=True),  # purged after a version trained on it: kept for lineage, unused
    UniqueConstraint("query_hash", "doc_id"),
)
ADDED_COLUMNS = {"probe_queries": ["key_name"], "probe_qrels": ["key_name"], "feedback": ["key_name", "purged_at"]}


def create_label_tables(engine: Engine) -> None:
    """Create the tables; a database from before the documents table had its name keeps its rows."""
    names = set(inspect(engine).get_table_names())
    if "probe_docs" in names and "documents" not in names:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE probe_docs RENAME TO documents"))
    create_tables(metadata, engine)
    add_missing_columns(metadata, engine, ADDED_COLUMNS)
