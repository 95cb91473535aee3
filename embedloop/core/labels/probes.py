"""The probe set: labelled queries ranked against the corpus to measure retrieval quality.

Probes come from an imported BEIR dataset or from labelled feedback (a deterministic, hash-chosen
share of it, which is then never trained on). Each probe query carries a ``group`` (its source,
or the month it arrived) so metrics can be reported per group.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select

from embedloop.core.labels.beir import load_beir
from embedloop.core.labels.corpus import add_documents
from embedloop.core.labels.tables import (
    create_label_tables,
    documents_table,
    probe_qrels_table,
    probe_queries_table,
)
from embedloop.core.storage.database import insert_new


@dataclass
class ProbeSet:
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    groups: list[str]
    origins: list[str]  # import | feedback
    relevant: list[set[str]]
    added_at: list[float]


def probe_set_of(folder: Path, split: str = "test", group_field: str = "source", origin: str = "dataset") -> ProbeSet:
    """A BEIR dataset as a probe set of its own, outside the store (for evaluating on any dataset)."""
    data = load_beir(folder, split)
    doc_ids = sorted(data.corpus)
    relevant = {q: set(docs) & data.corpus.keys() for q, docs in data.qrels.items() if q in data.queries}
    query_ids = sorted(q for q, docs in relevant.items() if docs)
    return ProbeSet(doc_ids=doc_ids, doc_texts=[data.corpus[d] for d in doc_ids], query_ids=query_ids,
                    query_texts=[data.queries[q]["text"] for q in query_ids],
                    groups=[str(data.queries[q].get(group_field) or "all") for q in query_ids],
                    origins=[origin] * len(query_ids), relevant=[relevant[q] for q in query_ids],
                    added_at=[0.0] * len(query_ids))


@dataclass(frozen=True)
class ProbeQuery:
    query_id: str
    text: str
    group: str
    relevant: tuple[str, ...]


class ProbeStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_label_tables(engine)

    def add(self, queries: list[ProbeQuery], docs: dict[str, str] | None = None, origin: str = "import") -> None:
        """Add probe queries with their relevant documents (and documents), in one transaction."""
        now = time.time()
        with self.engine.begin() as conn:
            add_documents(conn, docs or {}, now)
            insert_new(conn, probe_queries_table, [
                {"query_id": q.query_id, "text": q.text, "group": q.group, "origin": origin, "added_at": now}
                for q in queries])
            insert_new(conn, probe_qrels_table, [{"query_id": q.query_id, "doc_id": d}
                                                 for q in queries for d in q.relevant])

    def import_beir(self, folder: Path, split: str = "test", group_field: str = "source",
                    limit: int | None = None) -> tuple[int, int]:
        """Import queries of ``split`` (and the whole corpus); returns (queries, documents) read."""
        data = load_beir(folder, split)
        query_ids = sorted(data.qrels)[:limit] if limit else sorted(data.qrels)
        queries = [ProbeQuery(q, data.queries[q]["text"], str(data.queries[q].get(group_field) or "all"),
                              tuple(data.qrels[q])) for q in query_ids]
        self.add(queries, data.corpus)
        return len(queries), len(data.corpus)

    def load(self) -> ProbeSet:
        with self.engine.connect() as conn:
            docs = conn.execute(select(documents_table.c.doc_id, documents_table.c.text)
                                .order_by(documents_table.c.doc_id)).all()
            queries = conn.execute(select(probe_queries_table).order_by(probe_queries_table.c.query_id)).all()
            rels: dict[str, set[str]] = {}
            for q, d in conn.execute(select(probe_qrels_table.c.query_id, probe_qrels_table.c.doc_id)):
                rels.setdefault(q, set()).add(d)
        doc_ids = {d for d, _ in docs}
        kept = [q for q in queries if rels.get(q.query_id, set()) & doc_ids]
        return ProbeSet(
            doc_ids=[d for d, _ in docs], doc_texts=[t for _, t in docs],
            query_ids=[q.query_id for q in kept], query_texts=[q.text for q in kept],
            groups=[q.group for q in kept], origins=[q.origin for q in kept],
            relevant=[rels[q.query_id] & doc_ids for q in kept],
            added_at=[q.added_at for q in kept],
        )

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in (documents_table, probe_queries_table, probe_qrels_table)}
