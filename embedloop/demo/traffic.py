"""A steady stream of real requests for the demo, and feedback for a share of them."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from embedloop.demo.scenario import Query


@dataclass
class Sent:
    at: float
    phase: str
    latency_s: float
    status: int
    version: str | None


class Traffic:
    """``rate`` embedding requests per second (one question each) from the current pool; for a
    ``feedback_share`` of them the answer is posted to ``/v1/feedback``."""

    def __init__(self, url: str, rate: float, feedback_share: float, seed: int = 0) -> None:
        self.url, self.rate, self.feedback_share = url, rate, feedback_share
        self.rng = random.Random(seed)
        self.pool: list[Query] = []
        self.phase = ""
        self.sent: list[Sent] = []
        self.feedback_sent = self.feedback_failed = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = ThreadPoolExecutor(8, thread_name_prefix="traffic")
        self._local = threading.local()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def start(self, phase: str, pool: list[Query]) -> None:
        self.switch(phase, pool)
        self._thread.start()

    def switch(self, phase: str, pool: list[Query]) -> None:
        with self._lock:
            self.phase, self.pool = phase, pool

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._workers.shutdown(wait=True)

    def failures(self) -> int:
        return sum(1 for s in self.sent if s.status != 200) + self.feedback_failed

    def _client(self) -> httpx.Client:
        if not hasattr(self._local, "client"):
            self._local.client = httpx.Client(base_url=self.url, timeout=30)
        return self._local.client

    def _run(self) -> None:
        interval, next_at = 1.0 / self.rate, time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                phase, query = self.phase, self.rng.choice(self.pool)
                feedback = self.rng.random() < self.feedback_share
            self._workers.submit(self._one, phase, query, feedback)
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _one(self, phase: str, query: Query, feedback: bool) -> None:
        client, started = self._client(), time.time()
        try:
            response = client.post("/v1/embeddings", json={"model": "embedloop", "input": query.text})
            status, version = response.status_code, response.headers.get("x-embedloop-version")
        except httpx.HTTPError:
            status, version = 0, None
        self.sent.append(Sent(started, phase, time.time() - started, status, version))
        if feedback:
            try:
                ok = client.post("/v1/feedback", json={"query": query.text, "positive_id": query.positives[0],
                                                       "group": query.group}).status_code == 200
            except httpx.HTTPError:
                ok = False
            self.feedback_sent += 1
            self.feedback_failed += 0 if ok else 1
