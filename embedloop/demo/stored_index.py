"""The demo's second client: one that stores vectors. Its documents sit in Qdrant behind the index
channel's alias (built by ``embedloop reindex``), its questions are embedded through the channel
(``embedloop@index-main``), and its recall on its own index is measured again and again through the
story — what such a client gets across a promotion, and after the reindex that follows.

It reads Qdrant the way any application would, with Qdrant's own client. In local mode a storage
folder belongs to one process at a time, so the index is closed while a reindex writes to it (a
Qdrant server at ``vectors.url`` has no such pause).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from embedloop.core.evaluation.retrieval import retrieval_metrics

CHANNEL = "index-main"


@dataclass
class Reading:
    at: float
    queries_by: str  # the version that embedded the questions, as the answer names it
    index: str | None  # the collection the channel's alias pointed at
    recall: float  # recall@10
    mrr: float  # MRR@10


class StoredIndex:
    def __init__(self, url: str, vectors: Path, questions: list[tuple[str, list[str]]],
                 interval_s: float = 8.0) -> None:
        self.url, self.vectors, self.interval_s = url, vectors, interval_s
        self.questions = questions  # (text, relevant document ids)
        self.readings: list[Reading] = []
        self._client = None
        self._last = 0.0

    def open(self) -> None:
        from qdrant_client import QdrantClient

        self._client = QdrantClient(path=str(self.vectors))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def collection(self) -> str | None:
        for alias in self._client.get_aliases().aliases:
            if alias.alias_name == CHANNEL:
                return alias.collection_name
        return None

    def sample(self) -> None:
        """Measure if the index is open and the last reading is ``interval_s`` old."""
        if self._client is not None and time.monotonic() - self._last >= self.interval_s:
            self.measure()

    def measure(self) -> Reading:
        self._last = time.monotonic()
        answer = httpx.post(f"{self.url}/v1/embeddings", timeout=60, json={
            "model": f"embedloop@{CHANNEL}", "input": [text for text, _ in self.questions]})
        answer.raise_for_status()
        body = answer.json()
        vectors = np.array([row["embedding"] for row in body["data"]], dtype=np.float32)
        ranked = [[point.payload["doc_id"] for point in self._client.query_points(
            CHANNEL, query=vector.tolist(), limit=10, with_payload=["doc_id"]).points] for vector in vectors]
        figures = retrieval_metrics(ranked, [set(relevant) for _, relevant in self.questions], ks=(10,))
        reading = Reading(time.time(), body["model"].split("@", 1)[-1], self.collection(),
                          figures["recall@10"], figures["mrr@10"])
        self.readings.append(reading)
        return reading
