"""Everything a serving process holds: settings, registry, model pool, query-log writer."""

from __future__ import annotations

import asyncio
import gc
import logging
from concurrent.futures import ThreadPoolExecutor

from embedloop.core.feedback import FeedbackStore
from embedloop.core.querylog import QueryLogStore, QueryLogWriter
from embedloop.core.settings import Settings
from embedloop.core.versions import open_registry
from embedloop.service import metrics
from embedloop.service.pool import ModelPool

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = open_registry(settings)
        # One inference thread: ONNX Runtime parallelises inside a forward pass; the event loop
        # keeps parsing and answering HTTP while it runs.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnx")
        self.pool = ModelPool(settings, self.registry, self.executor)
        self.querylog: QueryLogWriter | None = None
        if settings.querylog.enabled:
            self.querylog = QueryLogWriter(
                QueryLogStore(settings.querylog_url),
                settings.querylog,
                on_written=metrics.QUERYLOG_WRITES.inc,
                on_dropped=metrics.QUERYLOG_DROPS.inc,
                on_failed=metrics.QUERYLOG_FAILURES.inc,
            )
        self.feedback = FeedbackStore(settings.monitoring_url)
        self.draining = False
        self._follow: asyncio.Task | None = None

    @property
    def ready(self) -> bool:
        return self.pool.ready and not self.draining

    async def start(self) -> None:
        if self.querylog is not None:
            self.querylog.start()
        try:
            await self.pool.refresh()
        except Exception:
            log.exception("initial model load failed; will keep trying")
        if not self.pool.ready:
            log.error("no production version could be loaded from %s; run `embedloop init` first",
                      self.settings.home)
        self._follow = asyncio.get_running_loop().create_task(self.pool.follow(), name="follow-production")
        # Everything alive now lives as long as the process: keep it out of the collector's full
        # passes, which otherwise grow with it and stall the event loop.
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        self.draining = True
        if self._follow is not None:
            self._follow.cancel()
        await self.pool.stop()
        if self.querylog is not None:
            await asyncio.to_thread(self.querylog.close)
        self.executor.shutdown(wait=True)
