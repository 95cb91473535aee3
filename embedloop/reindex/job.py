"""Reindex a channel: embed its documents with a version into a collection of their own, then swap
the channel's alias in the vector database and move the channel in the registry.

Resumable by construction: a document's point id is derived from its id, so a run started again
after any interruption (even ``kill -9``) finds what is written, embeds only the rest, and can never
hold a document twice. The alias moves only once the new collection holds every document; the old
collection is not touched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from embedloop.core.labels.files import read_corpus
from embedloop.core.models.versions import load_encoder
from embedloop.core.progress import Progress, no_progress
from embedloop.core.state import State
from embedloop.reindex.store import VectorStore, collection_of

STEP = "embedding documents"
SAMPLE = 64  # documents embedded to estimate a dry run's time


class ReindexError(Exception):
    pass


@dataclass
class Plan:
    channel: str
    version: str
    collection: str
    documents: int
    written: int  # already in the collection (a run resumed)
    estimated_s: float


@dataclass
class Outcome:
    channel: str
    version: str
    collection: str
    documents: int
    embedded: int  # by this run
    seconds: float

    @property
    def texts_per_s(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


class Reindex:
    def __init__(self, state: State, store: VectorStore, progress: Progress = no_progress) -> None:
        self.state, self.store, self.progress = state, store, progress

    def documents(self, channel: str, source: Path | None) -> list[tuple[str, str]]:
        """(id, text) of every document: from ``source`` (a corpus.jsonl, or a BEIR folder), else
        from the payloads of the collection the channel's alias points at."""
        if source is not None:
            read = read_corpus(source)
            if read.problems:
                number, problem = read.problems[0]
                raise ReindexError(f"{source} line {number}: {problem} ({len(read.problems)} bad lines; nothing done)")
            return read.records
        current = self.store.aliased(channel)
        if current is None:
            raise ReindexError(f"{channel} has no index yet: give the documents (--from corpus.jsonl)")
        return list(self.store.documents(current))

    def plan(self, channel: str, version: str, source: Path | None = None) -> Plan:
        """What a run would do, and how long embedding would take (a sample embedded and timed)."""
        self.state.channels.get(channel)
        docs, target = self.documents(channel, source), collection_of(channel, version)
        encoder = load_encoder(self.state.settings, self.state.registry.get(version))
        written = self.store.count(target) if self.store.client.collection_exists(target) else 0
        sample = [text for _, text in docs[:SAMPLE]]
        started = time.perf_counter()
        if sample:
            encoder.encode(sample)
        per_doc = (time.perf_counter() - started) / max(len(sample), 1)
        return Plan(channel, version, target, len(docs), written, per_doc * max(len(docs) - written, 0))

    def run(self, channel: str, version: str, source: Path | None = None, *, chunk: int = 256,
            actor: str | None = None, reason: str = "") -> Outcome:
        current = self.state.channels.get(channel)
        target = collection_of(channel, version)
        if self.store.aliased(channel) == target and current.built_with == version:
            raise ReindexError(f"{channel} is already built with {version}")
        docs = self.documents(channel, source)
        ids = [d for d, _ in docs]
        if len(set(ids)) != len(ids):
            raise ReindexError("document ids repeat: each document needs its own id")
        encoder = load_encoder(self.state.settings, self.state.registry.get(version))
        self.store.ensure_collection(target, encoder.dimensions)
        started, embedded = time.perf_counter(), 0
        for start in range(0, len(docs), chunk):
            part = docs[start : start + chunk]
            present = self.store.present(target, [d for d, _ in part])
            missing = [(d, t) for d, t in part if d not in present]
            if missing:
                vectors = encoder.encode([t for _, t in missing])
                self.store.upsert(target, [d for d, _ in missing], [t for _, t in missing], vectors)
                embedded += len(missing)
            self.progress(STEP, min(start + chunk, len(docs)), len(docs))
        seconds = time.perf_counter() - started
        held = self.store.count(target)
        if held != len(docs):
            raise ReindexError(f"{target} holds {held} points for {len(docs)} documents: the channel was not moved")
        self.store.swap(channel, target)
        self.state.channels.reindexed(channel, version, actor=actor,
                                      reason=reason or f"reindexed {len(docs)} documents into {target}")
        return Outcome(channel, version, target, len(docs), embedded, seconds)
