"""Labelled feedback: a query, the document that answers it, optionally documents that do not.

Stored beside the probe set and the corpus (same database, see :mod:`embedloop.core.probes`), so
that one transaction decides where a record goes: a deterministic, hash-chosen share becomes
probe queries (never trained on), the rest becomes training pairs. Records are deduplicated on
(query, document); a batch is validated whole and written whole, or not at all.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator, model_validator
from sqlalchemy import JSON, Column, Float, Integer, String, Table, Text, UniqueConstraint, func, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from embedloop.core.db import create_tables, make_engine
from embedloop.core.probes import docs_table, goes_to_probes, metadata, qrels_table, queries_table

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
    UniqueConstraint("query_hash", "doc_id"),
)


class FeedbackItem(BaseModel):
    """One judgement: ``query`` is answered by the document ``positive_id`` (or ``positive_text``)."""

    model_config = ConfigDict(extra="forbid")

    query: StrictStr = Field(min_length=1, max_length=10_000)
    positive_id: StrictStr | None = Field(None, min_length=1, max_length=256)
    positive_text: StrictStr | None = Field(None, min_length=1, max_length=100_000)
    negative_ids: list[StrictStr] = Field(default_factory=list, max_length=64)
    negative_texts: list[StrictStr] = Field(default_factory=list, max_length=64)
    group: StrictStr | None = Field(None, max_length=128,
                                    description="e.g. the source; probe recall is reported per group")

    @field_validator("query", "positive_text")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return value

    @model_validator(mode="after")
    def _one_positive(self) -> "FeedbackItem":
        if (self.positive_id is None) == (self.positive_text is None):
            raise ValueError("give exactly one of positive_id and positive_text")
        return self


class FeedbackError(ValueError):
    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"item {index}: {message}")
        self.index = index


@dataclass
class FeedbackResult:
    accepted: int = 0
    duplicates: int = 0
    to_probes: int = 0


@dataclass
class TrainingPair:
    feedback_id: int
    query: str
    positive: str
    negatives: list[str]


def query_hash(query: str) -> str:
    return hashlib.sha256(query.strip().lower().encode()).hexdigest()


def text_doc_id(text: str) -> str:
    """The id of a document given by its text."""
    return "fb:" + hashlib.sha256(text.encode()).hexdigest()[:24]


class FeedbackStore:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        create_tables(metadata, self.engine)

    def add(self, items: list[FeedbackItem], *, origin: str, probe_fraction: float) -> FeedbackResult:
        """Write every item or none; unknown document ids raise :class:`FeedbackError`."""
        now, result = time.time(), FeedbackResult()
        with self.engine.begin() as conn:
            wanted = {i for item in items for i in [item.positive_id, *item.negative_ids] if i is not None}
            known = set()
            for chunk in _chunks(sorted(wanted), 500):
                known.update(conn.execute(select(docs_table.c.doc_id).where(docs_table.c.doc_id.in_(chunk))).scalars())
            new_docs: dict[str, str] = {}
            for index, item in enumerate(items):
                for doc_id in [item.positive_id, *item.negative_ids]:
                    if doc_id is not None and doc_id not in known:
                        raise FeedbackError(index, f"unknown document id {doc_id!r}; import the corpus first")
                for text in [item.positive_text, *item.negative_texts]:
                    if text is not None:
                        new_docs[text_doc_id(text)] = text
            if new_docs:
                conn.execute(_insert_ignore(conn, docs_table),
                             [{"doc_id": d, "text": t, "added_at": now} for d, t in new_docs.items()])
            for item in items:
                positive = item.positive_id or text_doc_id(item.positive_text or "")
                negatives = [*item.negative_ids, *map(text_doc_id, item.negative_texts)]
                digest, group = query_hash(item.query), item.group or "feedback"
                if goes_to_probes(item.query, probe_fraction):
                    qid = "fb:" + digest[:24]
                    conn.execute(_insert_ignore(conn, queries_table), [{"query_id": qid, "text": item.query,
                                 "group": group, "origin": "feedback", "added_at": now}])
                    added = conn.execute(_insert_ignore(conn, qrels_table),
                                         [{"query_id": qid, "doc_id": positive}]).rowcount
                    result.to_probes += added
                else:
                    added = conn.execute(_insert_ignore(conn, feedback_table), [{
                        "query_hash": digest, "query": item.query, "doc_id": positive, "negative_ids": negatives,
                        "group": group, "origin": origin, "added_at": now}]).rowcount
                result.accepted += added
                result.duplicates += 1 - added
        return result

    def add_documents(self, docs: dict[str, str]) -> int:
        now = time.time()
        with self.engine.begin() as conn:
            before = conn.execute(select(func.count()).select_from(docs_table)).scalar_one()
            for chunk in _chunks(list(docs.items()), 1000):
                conn.execute(_insert_ignore(conn, docs_table),
                             [{"doc_id": d, "text": t, "added_at": now} for d, t in chunk])
            return conn.execute(select(func.count()).select_from(docs_table)).scalar_one() - before

    def corpus(self) -> tuple[list[str], list[str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(docs_table.c.doc_id, docs_table.c.text).order_by(docs_table.c.doc_id)).all()
        return [r[0] for r in rows], [r[1] for r in rows]

    def pairs(self, after_id: int = 0, up_to_id: int | None = None) -> list[TrainingPair]:
        """Training pairs with ``after_id < id <= up_to_id``, with their document texts."""
        query = select(feedback_table, docs_table.c.text).join(
            docs_table, docs_table.c.doc_id == feedback_table.c.doc_id)
        query = query.where(feedback_table.c.id > after_id).order_by(feedback_table.c.id)
        if up_to_id is not None:
            query = query.where(feedback_table.c.id <= up_to_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            negative_ids = sorted({n for r in rows for n in r.negative_ids})
            texts = {}
            for chunk in _chunks(negative_ids, 500):
                texts.update(conn.execute(select(docs_table.c.doc_id, docs_table.c.text)
                                          .where(docs_table.c.doc_id.in_(chunk))).tuples().all())
        return [TrainingPair(r.id, r.query, r.text, [texts[n] for n in r.negative_ids if n in texts]) for r in rows]

    def last_id(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(feedback_table.c.id))).scalar_one() or 0

    def count(self, after_id: int = 0) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(feedback_table)
                                .where(feedback_table.c.id > after_id)).scalar_one()


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _insert_ignore(conn, table: Table):
    if conn.dialect.name == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    return pg_insert(table).on_conflict_do_nothing()
