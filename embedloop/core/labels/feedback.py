"""Labelled feedback: a query, the document that answers it, optionally documents that do not.

Stored beside the probe set and the corpus (one database, :mod:`embedloop.core.labels.tables`), so
that one transaction decides where a record goes: a deterministic share chosen by a keyed hash of
the query (the installation's secret, so no sender can choose) becomes probe queries (never trained
on), the rest becomes training pairs. Records are deduplicated on (query, document); a batch is
validated whole and written whole, or not at all. Feedback sent with an API key keeps the key's
name: a daily quota counts it, a run caps each key's share, and a key's feedback can be purged.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator, model_validator
from sqlalchemy import Engine, delete, func, select, union_all, update

from embedloop.core.labels import split
from embedloop.core.labels.corpus import add_documents, known_ids, text_doc_id, texts_of
from embedloop.core.labels.tables import (
    create_label_tables,
    documents_table,
    feedback_table,
    probe_qrels_table,
    probe_queries_table,
)
from embedloop.core.storage.database import insert_new
from embedloop.core.storage.secrets import installation_secret

DAY_S = 86_400.0


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
    """An item of a batch that cannot be stored (the whole batch is refused)."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"item {index}: {message}")
        self.index = index


class DailyQuotaExceeded(Exception):
    """A key's feedback in the last 24 hours would pass its quota (nothing was written)."""

    def __init__(self, key: str, limit: int, retry_after_s: int) -> None:
        super().__init__(f"key {key!r} may send {limit} feedback items per 24 hours")
        self.key, self.limit, self.retry_after_s = key, limit, retry_after_s


@dataclass
class PurgeResult:
    deleted_pairs: int  # no version was trained on them: gone
    marked_pairs: int  # a version was trained on them: kept for lineage, never used again
    deleted_probes: int  # probe judgements the key's feedback had become


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
    key: str | None = None  # the API key that sent it; None for imports and keyless feedback


class FeedbackStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_label_tables(engine)
        self.probe_secret = installation_secret(engine, "probe_split")

    def add(self, items: list[FeedbackItem], *, origin: str, probe_fraction: float, key: str | None = None,
            daily_limit: int | None = None) -> FeedbackResult:
        """Write every item or none; unknown document ids raise :class:`FeedbackError`, a key past
        ``daily_limit`` items in 24 hours :class:`DailyQuotaExceeded`."""
        now, result = time.time(), FeedbackResult()
        with self.engine.begin() as conn:
            if key is not None and daily_limit is not None:
                self._check_daily(conn, key, len(items), daily_limit, now)
            known = known_ids(conn, (i for item in items for i in [item.positive_id, *item.negative_ids] if i))
            new_docs: dict[str, str] = {}
            for index, item in enumerate(items):
                for doc_id in [item.positive_id, *item.negative_ids]:
                    if doc_id is not None and doc_id not in known:
                        raise FeedbackError(index, f"unknown document id {doc_id!r}; import the corpus first")
                for text in [item.positive_text, *item.negative_texts]:
                    if text is not None:
                        new_docs[text_doc_id(text)] = text
            add_documents(conn, new_docs, now)
            for item in items:
                positive = item.positive_id or text_doc_id(item.positive_text or "")
                negatives = [*item.negative_ids, *map(text_doc_id, item.negative_texts)]
                digest, group = split.query_hash(item.query), item.group or "feedback"
                if split.in_share(item.query, split.PROBES, probe_fraction, self.probe_secret):
                    query_id = "fb:" + digest[:24]
                    insert_new(conn, probe_queries_table, {"query_id": query_id, "text": item.query, "group": group,
                                                           "origin": "feedback", "added_at": now, "key_name": key})
                    added = insert_new(conn, probe_qrels_table, {"query_id": query_id, "doc_id": positive,
                                                                 "key_name": key})
                    result.to_probes += added
                else:
                    added = insert_new(conn, feedback_table, {
                        "query_hash": digest, "query": item.query, "doc_id": positive, "negative_ids": negatives,
                        "group": group, "origin": origin, "added_at": now, "key_name": key})
                result.accepted += added
                result.duplicates += 1 - added
        return result

    @staticmethod
    def _check_daily(conn, key: str, incoming: int, limit: int, now: float) -> None:  # noqa: ANN001
        since = now - DAY_S
        times = union_all(*(select(t.c.added_at).where(t.c.key_name == key, t.c.added_at > since)
                            for t in (feedback_table, probe_queries_table))).subquery()
        sent = conn.execute(select(times.c.added_at).order_by(times.c.added_at)).scalars().all()
        if len(sent) + incoming <= limit:
            return
        if incoming > limit:
            raise DailyQuotaExceeded(key, limit, retry_after_s=math.ceil(DAY_S))
        # room for the batch once the oldest (len + incoming - limit) of the day's items age out
        frees_at = sent[len(sent) + incoming - limit - 1] + DAY_S
        raise DailyQuotaExceeded(key, limit, retry_after_s=max(1, math.ceil(frees_at - now)))

    def pairs(self, after_id: int = 0, up_to_id: int | None = None) -> list[TrainingPair]:
        """Training pairs with ``after_id < id <= up_to_id``, with their document texts (purged ones left out)."""
        query = (select(feedback_table, documents_table.c.text)
                 .join(documents_table, documents_table.c.doc_id == feedback_table.c.doc_id)
                 .where(feedback_table.c.id > after_id, feedback_table.c.purged_at.is_(None))
                 .order_by(feedback_table.c.id))
        if up_to_id is not None:
            query = query.where(feedback_table.c.id <= up_to_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            texts = texts_of(conn, (n for r in rows for n in r.negative_ids))
        return [TrainingPair(r.id, r.query, r.text, [texts[n] for n in r.negative_ids if n in texts], r.key_name)
                for r in rows]

    def purge(self, key: str, *, trained_upto: int, since: float | None = None) -> PurgeResult:
        """Remove what ``key`` sent (since ``since``): pairs above ``trained_upto`` (no version trained
        on them) and probe queries are deleted; pairs a version was trained on are marked purged."""
        now = time.time()
        mine = [feedback_table.c.key_name == key, feedback_table.c.purged_at.is_(None)]
        qrels = [probe_qrels_table.c.key_name == key]
        if since is not None:
            mine.append(feedback_table.c.added_at >= since)
            # a judgement has no time of its own: its query's (the first time anyone sent that query)
            qrels.append(probe_qrels_table.c.query_id.in_(
                select(probe_queries_table.c.query_id).where(probe_queries_table.c.added_at >= since)))
        with self.engine.begin() as conn:
            deleted = conn.execute(delete(feedback_table).where(*mine, feedback_table.c.id > trained_upto)).rowcount
            marked = conn.execute(update(feedback_table).where(*mine, feedback_table.c.id <= trained_upto)
                                  .values(purged_at=now)).rowcount
            judgements = conn.execute(delete(probe_qrels_table).where(*qrels)).rowcount
            # probe queries from feedback left with no judgement at all go too
            conn.execute(delete(probe_queries_table).where(probe_queries_table.c.origin == "feedback",
                                                           ~probe_queries_table.c.query_id.in_(
                                                               select(probe_qrels_table.c.query_id))))
        return PurgeResult(deleted, marked, judgements)

    def last_id(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(feedback_table.c.id))).scalar_one() or 0

    def count(self, after_id: int = 0) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(feedback_table)
                                .where(feedback_table.c.id > after_id)).scalar_one()
