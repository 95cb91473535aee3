"""The probe set: labelled queries and the corpus they are ranked against.

Probes come from an imported BEIR dataset or from labelled feedback (a deterministic, hash-chosen
fraction of it, which is then never trained on). Each probe query carries a ``group`` (its source,
or the month it arrived) so recall can be reported per group.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, UniqueConstraint, func, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from embedloop.core.datasets import load_beir
from embedloop.core.db import create_tables, make_engine

metadata = MetaData()

docs_table = Table(
    "probe_docs", metadata,
    Column("doc_id", String(256), primary_key=True),
    Column("text", Text, nullable=False),
    Column("added_at", Float, nullable=False),
)
queries_table = Table(
    "probe_queries", metadata,
    Column("query_id", String(256), primary_key=True),
    Column("text", Text, nullable=False),
    Column("group", String(128), nullable=False),
    Column("origin", String(32), nullable=False),  # import | feedback
    Column("added_at", Float, nullable=False),
)
qrels_table = Table(
    "probe_qrels", metadata,
    Column("id", Integer, primary_key=True),
    Column("query_id", String(256), nullable=False, index=True),
    Column("doc_id", String(256), nullable=False),
    UniqueConstraint("query_id", "doc_id"),
)


def goes_to_probes(query_text: str, fraction: float) -> bool:
    """Deterministic split of feedback: the same query always lands on the same side."""
    digest = hashlib.sha256(("embedloop-probe-v1|" + query_text.strip().lower()).encode()).hexdigest()
    return int(digest[:8], 16) / 16**8 < fraction


@dataclass
class ProbeSet:
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    groups: list[str]
    relevant: list[set[str]]
    added_at: list[float]


class ProbeStore:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        create_tables(metadata, self.engine)

    def _upsert(self, conn, table: Table, rows: list[dict]) -> None:
        if not rows:
            return
        if conn.dialect.name == "sqlite":
            conn.execute(sqlite_insert(table).on_conflict_do_nothing(), rows)
        else:  # portable fallback: skip rows whose key exists
            key = list(table.primary_key.columns)[0]
            existing = set(conn.execute(select(key)).scalars())
            conn.execute(table.insert(), [r for r in rows if r[key.name] not in existing])

    def add(self, docs: dict[str, str], queries: list[tuple[str, str, str]], qrels: list[tuple[str, str]],
            origin: str) -> None:
        """Add documents, (query id, text, group) and (query id, doc id) pairs in one transaction."""
        now = time.time()
        with self.engine.begin() as conn:
            self._upsert(conn, docs_table, [{"doc_id": d, "text": t, "added_at": now} for d, t in docs.items()])
            self._upsert(conn, queries_table, [{"query_id": q, "text": t, "group": g, "origin": origin,
                                                "added_at": now} for q, t, g in queries])
            if qrels:
                stmt = sqlite_insert(qrels_table).on_conflict_do_nothing() if conn.dialect.name == "sqlite" \
                    else qrels_table.insert()
                conn.execute(stmt, [{"query_id": q, "doc_id": d} for q, d in qrels])

    def import_beir(self, folder: Path, split: str = "test", group_field: str = "source",
                    limit: int | None = None) -> tuple[int, int]:
        """Import queries of ``split`` (and the whole corpus); returns (queries, documents) added."""
        data = load_beir(folder, split)
        query_ids = sorted(data.qrels)[:limit] if limit else sorted(data.qrels)
        docs = {d: data.doc_text(d) for d in data.corpus}
        queries = [(q, data.queries[q]["text"], str(data.queries[q].get(group_field) or "all")) for q in query_ids]
        qrels = [(q, d) for q in query_ids for d in data.qrels[q]]
        self.add(docs, queries, qrels, origin="import")
        return len(queries), len(docs)

    def load(self) -> ProbeSet:
        with self.engine.connect() as conn:
            docs = conn.execute(select(docs_table.c.doc_id, docs_table.c.text).order_by(docs_table.c.doc_id)).all()
            queries = conn.execute(select(queries_table).order_by(queries_table.c.query_id)).all()
            rels: dict[str, set[str]] = {}
            for q, d in conn.execute(select(qrels_table.c.query_id, qrels_table.c.doc_id)):
                rels.setdefault(q, set()).add(d)
        doc_ids = {d for d, _ in docs}
        kept = [q for q in queries if rels.get(q.query_id, set()) & doc_ids]
        return ProbeSet(
            doc_ids=[d for d, _ in docs], doc_texts=[t for _, t in docs],
            query_ids=[q.query_id for q in kept], query_texts=[q.text for q in kept],
            groups=[q.group for q in kept], relevant=[rels[q.query_id] & doc_ids for q in kept],
            added_at=[q.added_at for q in kept],
        )

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in (docs_table, queries_table, qrels_table)}
