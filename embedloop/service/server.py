"""Everything one serving process holds: its state (settings and stores), the model pool and the
query-log writer. BentoML creates one per worker process; the routes find it on the app."""

from __future__ import annotations

import asyncio
import gc
import logging
from concurrent.futures import ThreadPoolExecutor

from embedloop.core.history.querylog import QueryLogWriter
from embedloop.core.state import State
from embedloop.core.storage.secrets import installation_secret
from embedloop.service import metrics
from embedloop.service.access import Access
from embedloop.service.admission import Admission
from embedloop.service.pool import ModelPool
from embedloop.service.review.session import Sessions

log = logging.getLogger(__name__)


class Server:
    def __init__(self, state: State) -> None:
        self.state = state
        self.settings = state.settings
        # One inference thread per batch in flight (`serving.batches_in_flight`, the cores shared among
        # them); the event loop keeps parsing and answering HTTP while they run.
        self.executor = ThreadPoolExecutor(max_workers=self.settings.serving.batches_in_flight,
                                           thread_name_prefix="onnx")
        serving = self.settings.serving
        self.admission = Admission(serving.max_queue_texts, serving.max_queue_wait_s, serving.batches_in_flight,
                                   min_batch=min(serving.sub_batch_items, serving.max_batch_items))
        self.pool = ModelPool(self.settings, state.registry, self.executor, self.admission)
        self.access = Access(state.keys, self.settings)
        self.sessions: Sessions | None = None  # review-page logins; at start-up (reads a secret)
        self.querylog: QueryLogWriter | None = None
        if self.settings.querylog.enabled:
            self.querylog = QueryLogWriter(
                state.querylog,
                self.settings.querylog,
                on_written=metrics.QUERYLOG_WRITES.inc,
                on_dropped=metrics.QUERYLOG_DROPS.inc,
                on_failed=metrics.QUERYLOG_FAILURES.inc,
            )
        self.draining = False
        self._tasks: list[asyncio.Task] = []

    @property
    def ready(self) -> bool:
        return self.pool.ready and not self.draining

    async def start(self) -> None:
        for reason in ("overloaded", "deadline"):  # at 0 from the start: rate() needs a series
            metrics.REJECTED.labels(reason)
        await asyncio.to_thread(self.access.load)
        secret = await asyncio.to_thread(installation_secret, self.state.registry.engine, "review_sessions")
        self.sessions = Sessions(self.access, secret, self.settings.admin.session_s)
        log.warning("%s", self.access.describe())
        if self.querylog is not None:
            self.querylog.start()
        try:
            await self.pool.refresh()
        except Exception:
            log.exception("initial model load failed; will keep trying")
        if not self.pool.ready:
            log.error("no production version could be loaded from %s; run `embedloop init` first",
                      self.settings.home)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self.pool.follow(), name="follow-production"),
                       loop.create_task(self.access.follow(), name="follow-keys")]
        # Everything alive now lives as long as the process: keep it out of the collector's full
        # passes, which otherwise grow with it and stall the event loop.
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        self.draining = True
        for task in self._tasks:
            task.cancel()
        await self.pool.stop()
        if self.querylog is not None:
            await asyncio.to_thread(self.querylog.close)
        self.executor.shutdown(wait=True)
