"""Cross-request adaptive batching with item and token limits, a bounded queue and deadlines.

Texts of all waiting requests form one FIFO queue. Whenever the model is free, the next batch is
cut from its head: as many texts as fit ``max_batch_items`` and ``max_batch_tokens`` (padded
size: rows x longest row). Batch size therefore adapts to load by itself: one text when traffic is
light, full batches when it queues. How much may queue is decided before texts get here
(:mod:`embedloop.service.admission`, which the ``observer`` tells how fast batches are computed); a text
whose request has passed its deadline or gone away is skipped, not computed.

BentoML's own dispatcher was not used for this: it limits items only, polls every millisecond,
and sheds load with 503s chosen by its latency model rather than with a bounded queue.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from embedloop.service import metrics


class BatchObserver(Protocol):
    def batch_finished(self, texts: int, tokens: int, seconds: float | None) -> None: ...


class DeadlineExceeded(Exception):
    """The request's deadline passed before its texts were embedded."""


@dataclass(frozen=True)
class BatchLimits:
    max_items: int = 64
    max_tokens: int = 16384
    max_wait_s: float = 0.002
    in_flight: int = 1  # batches computed at once (each in its own executor thread)


@dataclass
class _Job:
    n: int
    out: np.ndarray | None
    future: asyncio.Future
    remaining: int
    deadline: float

    def alive(self, now: float) -> bool:
        return not self.future.done() and now < self.deadline


@dataclass
class _Item:
    job: _Job
    index: int
    ids: np.ndarray


@dataclass
class Batcher:
    """Queues token-id arrays of one model version and feeds them to ``embed`` in batches."""

    embed: Callable[[list[np.ndarray]], np.ndarray]
    executor: Executor
    limits: BatchLimits = field(default_factory=BatchLimits)
    observer: BatchObserver | None = None  # told of each finished batch (admission)

    def __post_init__(self) -> None:
        self._queue: deque[_Item] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._computing: set[asyncio.Task] = set()

    # -- producer side -------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return len(self._queue)

    @property
    def idle(self) -> bool:
        return not self._queue and not self._computing

    async def submit(self, token_ids: list[np.ndarray], deadline: float) -> np.ndarray:
        """Embeddings for ``token_ids``; raises DeadlineExceeded past ``deadline`` (monotonic)."""
        n = len(token_ids)
        self._ensure_running()
        loop = asyncio.get_running_loop()
        job = _Job(n=n, out=None, future=loop.create_future(), remaining=n, deadline=deadline)
        self._queue.extend(_Item(job, i, ids) for i, ids in enumerate(token_ids))
        metrics.QUEUE_DEPTH.inc(n)
        self._wakeup.set()
        try:
            return await asyncio.wait_for(job.future, timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise DeadlineExceeded() from None
        finally:
            if not job.future.done():
                job.future.cancel()  # its queued texts are skipped, not computed

    # -- consumer side -------------------------------------------------------------------------
    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    async def stop(self) -> None:
        for task in [self._task, *self._computing]:
            if task is None:
                continue
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    def _take_batch(self) -> list[_Item]:
        batch: list[_Item] = []
        width = 0
        now = time.monotonic()
        while self._queue and len(batch) < self.limits.max_items:
            item = self._queue[0]
            if not item.job.alive(now):
                self._queue.popleft()
                metrics.QUEUE_DEPTH.dec()
                continue
            new_width = max(width, item.ids.shape[0])
            if batch and new_width * (len(batch) + 1) > self.limits.max_tokens:
                break
            batch.append(self._queue.popleft())
            width = new_width
        metrics.QUEUE_DEPTH.dec(len(batch))
        return batch

    async def _run(self) -> None:
        slots = asyncio.Semaphore(self.limits.in_flight)
        while True:
            await slots.acquire()
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                if not self._computing and len(self._queue) < self.limits.max_items and self.limits.max_wait_s > 0:
                    # The model was idle: let a lone text wait a moment for company.
                    await asyncio.sleep(self.limits.max_wait_s)
            batch = self._take_batch()
            if not batch:
                slots.release()
                continue
            task = asyncio.get_running_loop().create_task(self._compute(batch, slots))
            self._computing.add(task)
            task.add_done_callback(self._computing.discard)

    async def _compute(self, batch: list[_Item], slots: asyncio.Semaphore) -> None:
        tokens, elapsed = sum(it.ids.shape[0] for it in batch), None
        try:
            started = time.perf_counter()
            vectors = await asyncio.get_running_loop().run_in_executor(self.executor, self.embed,
                                                                       [it.ids for it in batch])
            elapsed = time.perf_counter() - started
            metrics.INFERENCE_LATENCY.observe(elapsed)
        except Exception as exc:  # the model failed: fail these requests, keep serving others
            for item in batch:
                if not item.job.future.done():
                    item.job.future.set_exception(exc)
            return
        finally:
            slots.release()
            if self.observer is not None:
                self.observer.batch_finished(len(batch), tokens, elapsed)
        for item, vector in zip(batch, vectors):
            job = item.job
            if job.future.done():
                continue
            if job.out is None:
                job.out = np.empty((job.n, vector.shape[0]), dtype=np.float32)
            job.out[item.index] = vector
            job.remaining -= 1
            if job.remaining == 0:
                job.future.set_result(job.out)
