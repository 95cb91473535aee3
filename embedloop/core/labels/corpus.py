"""The corpus: the documents feedback names, mining ranks and probe queries are checked against."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator

from sqlalchemy import Connection, Engine, func, select

from embedloop.core.labels.tables import create_label_tables, documents_table
from embedloop.core.storage.database import insert_new


def text_doc_id(text: str) -> str:
    """The id of a document given by its text."""
    return "fb:" + hashlib.sha256(text.encode()).hexdigest()[:24]


def chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def known_ids(conn: Connection, doc_ids: Iterable[str]) -> set[str]:
    known: set[str] = set()
    for chunk in chunks(sorted(set(doc_ids)), 500):
        known.update(conn.execute(select(documents_table.c.doc_id).where(documents_table.c.doc_id.in_(chunk)))
                     .scalars())
    return known


def texts_of(conn: Connection, doc_ids: Iterable[str]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for chunk in chunks(sorted(set(doc_ids)), 500):
        texts.update(conn.execute(select(documents_table.c.doc_id, documents_table.c.text)
                                  .where(documents_table.c.doc_id.in_(chunk))).tuples().all())
    return texts


def add_documents(conn: Connection, docs: dict[str, str], now: float) -> int:
    """Insert documents whose ids are new (an existing id keeps its text); returns how many were."""
    return sum(insert_new(conn, documents_table, [{"doc_id": d, "text": t, "added_at": now} for d, t in chunk])
               for chunk in chunks(list(docs.items()), 1000))


class CorpusStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_label_tables(engine)

    def add(self, docs: dict[str, str]) -> int:
        """Add documents (existing ids keep their text); returns how many were new."""
        with self.engine.begin() as conn:
            return add_documents(conn, docs, time.time())

    def texts(self, doc_ids: Iterable[str]) -> dict[str, str]:
        """The texts of those of ``doc_ids`` that are stored."""
        with self.engine.connect() as conn:
            return texts_of(conn, doc_ids)

    def all(self) -> tuple[list[str], list[str]]:
        """(ids, texts) of every document, ordered by id."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(documents_table.c.doc_id, documents_table.c.text)
                                .order_by(documents_table.c.doc_id)).all()
        return [r[0] for r in rows], [r[1] for r in rows]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(documents_table)).scalar_one()
