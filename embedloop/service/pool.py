"""Loaded model versions: follows the ``production`` alias, hot-swaps, serves pinned versions and
index channels (``embedloop@index-main``: whatever version the channel serves) and query adapters
(``embedloop@v2~v1``: v2's vectors rotated into v1's space).

A new production version is loaded, checked (sha256) and warmed in a background thread while the
old one keeps serving; the swap is one reference assignment. At most ``max_loaded_versions`` stay
in memory; the least recently used idle one goes first, production never.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections import OrderedDict
from concurrent.futures import Executor
from dataclasses import dataclass, replace

import numpy as np

from embedloop.core.models.adapters import QueryAdapter, adapter_name, load_adapter, parse_adapter_name
from embedloop.core.models.artifacts import IntegrityError
from embedloop.core.models.channels import Channels
from embedloop.core.models.encoder import OnnxEncoder
from embedloop.core.models.registry import PRODUCTION, VERSION_NAME, Registry, UnknownVersion
from embedloop.core.models.versions import load_encoder, version_dir
from embedloop.core.settings import Settings
from embedloop.service import metrics
from embedloop.service.admission import Admission
from embedloop.service.batcher import Batcher, BatchLimits

log = logging.getLogger(__name__)

WARMUP_TEXTS = ["warm up", "a slightly longer sentence to warm up the model with more tokens in it"]
RETRY_FAILED_AFTER_S = 60.0
CHANNELS_REREAD_S = 1.0  # an unknown channel name re-reads the channels at most this often


def observe_pass(rows: int, width: int) -> None:
    metrics.BATCH_SIZE.observe(rows)
    metrics.BATCH_TOKENS.observe(rows * width)


class VersionUnavailable(Exception):
    """The version exists but cannot be loaded (integrity check, missing files)."""


@dataclass
class LoadedModel:
    version: str
    encoder: OnnxEncoder
    batcher: Batcher
    last_used: float = 0.0
    adapter: QueryAdapter | None = None  # set on the view of a version a request names by its adapter

    @property
    def name(self) -> str:
        """The model name that answers: the version, or its adapter (``v2~v1``)."""
        return self.adapter.name if self.adapter else self.version

    def shape(self, vectors: np.ndarray) -> np.ndarray:
        return self.adapter.apply(vectors) if self.adapter else vectors


class ModelPool:
    def __init__(self, settings: Settings, registry: Registry, executor: Executor, admission: Admission) -> None:
        self.settings = settings
        self.registry = registry
        self.executor = executor
        self.admission = admission  # one for all versions: they share the cores
        s = settings.serving
        self.limits = BatchLimits(s.max_batch_items, s.max_batch_tokens, s.max_wait_ms / 1000, s.batches_in_flight)
        self.loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self.production: LoadedModel | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._failed: dict[str, float] = {}
        self.channels = Channels(registry)
        self.channel_targets: dict[str, str] = {}  # channel -> version or adapter, re-read with production
        self.channels_reread_s = CHANNELS_REREAD_S
        self._channels_read_at = -CHANNELS_REREAD_S
        self.adapters: dict[str, QueryAdapter] = {}  # one dims x dims matrix each: kept once read

    def threads_per_batch(self) -> int:
        """ONNX Runtime threads of a served session: the cores shared among the batches in flight
        (one each on two cores), unless ``serving.intra_op_threads`` says otherwise."""
        s = self.settings.serving
        if s.intra_op_threads or s.batches_in_flight == 1:
            return s.intra_op_threads
        return max(1, (os.cpu_count() or 1) // s.batches_in_flight)

    @property
    def ready(self) -> bool:
        return self.production is not None

    def queue_depth(self) -> int:
        return sum(m.batcher.depth for m in self.loaded.values())

    # -- loading ------------------------------------------------------------------------------
    def _load_sync(self, name: str) -> LoadedModel:
        version = self.registry.get(name)  # UnknownVersion if there is none
        try:
            encoder = load_encoder(self.settings, version, intra_op_threads=self.threads_per_batch())
            warmup = [t.ids for t in encoder.tokenize(WARMUP_TEXTS)]
            encoder.embed_tokens(warmup)
            # A first measure of the drain rate, so admission bounds the queue's wait from the start.
            full = (warmup * self.admission.min_batch)[: self.admission.min_batch]
            started = time.perf_counter()
            encoder.embed_tokens(full)
            self.admission.observe_batch(len(full), sum(ids.shape[0] for ids in full), time.perf_counter() - started)
        except Exception as exc:
            metrics.MODEL_LOADS.labels("failed").inc()
            log.error("version %s cannot be loaded: %s", name, exc)
            raise VersionUnavailable(f"version {name} cannot be loaded: {exc}") from exc
        metrics.MODEL_LOADS.labels("ok").inc()
        log.info("loaded version %s on %s", name, encoder.provider)
        serving = self.settings.serving
        embed = functools.partial(encoder.embed_sorted, sub_batch=serving.sub_batch_items,
                                  overhead_tokens=serving.pass_overhead_tokens, on_pass=observe_pass)
        return LoadedModel(name, encoder, Batcher(embed, self.executor, self.limits,
                                                    observer=self.admission))

    async def _load(self, name: str) -> LoadedModel:
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            if name in self.loaded:
                return self.loaded[name]
            model = await asyncio.to_thread(self._load_sync, name)
            self.loaded[name] = model
            return model

    async def resolve(self, name: str | None) -> LoadedModel:
        """The production model (``name`` None), a pinned version, a channel's version or a version's
        query adapter (``v2~v1``), loading it if needed."""
        if name is not None and not VERSION_NAME.match(name) and not parse_adapter_name(name):
            recently = time.monotonic() - self._channels_read_at < self.channels_reread_s
            if name not in self.channel_targets and not recently:  # a channel created since the last poll
                await self.refresh_channels()  # (not on every request naming a channel that does not exist)
            if name not in self.channel_targets:
                raise UnknownVersion(f"no version or channel {name!r}")
            name = self.channel_targets[name]  # a version, or an adapter for a channel that follows through one
        if name is not None and (adapted := parse_adapter_name(name)):
            version, into = adapted
            model = await self.resolve(version)
            return replace(model, adapter=await self._adapter(version, into))
        model = self.production if name is None else self.loaded.get(name)
        if model is None:
            if name is None:
                raise VersionUnavailable("no production version is loaded yet")
            model = await self._load(name)
            self._publish_info()
            await self._evict()
        model.last_used = time.monotonic()
        self.loaded.move_to_end(model.version)
        return model

    async def _adapter(self, version: str, into: str) -> QueryAdapter:
        key = adapter_name(version, into)
        if key not in self.adapters:
            found = await asyncio.to_thread(self.registry.get, version)
            try:
                self.adapters[key] = await asyncio.to_thread(load_adapter, version_dir(self.settings, found),
                                                             found, into)
            except (IntegrityError, ValueError) as exc:
                raise VersionUnavailable(f"the query adapter {key} cannot be loaded: {exc}") from exc
        return self.adapters[key]

    # -- following the production alias ---------------------------------------------------------
    async def refresh(self) -> bool:
        """Swap to the version ``production`` points at, if it moved; True when a swap happened."""
        name = await asyncio.to_thread(self.registry.alias, PRODUCTION)
        if name is None or (self.production and self.production.version == name):
            return False
        failed_at = self._failed.get(name)
        if failed_at is not None and time.monotonic() - failed_at < RETRY_FAILED_AFTER_S:
            return False
        try:
            model = await self._load(name)
        except (UnknownVersion, VersionUnavailable):
            self._failed[name] = time.monotonic()
            return False
        previous, self.production = self.production, model
        model.last_used = time.monotonic()
        if previous is not None:
            metrics.MODEL_SWAPS.inc()
        log.info("production is now %s (was %s)", name, previous.version if previous else None)
        self._publish_info()
        await asyncio.to_thread(self._publish_compatibility, name)
        await self._evict()
        return True

    async def refresh_channels(self) -> None:
        self._channels_read_at = time.monotonic()
        self.channel_targets = await asyncio.to_thread(self.channels.targets)
        production = self.production.version if self.production else None
        for channel, version in self.channel_targets.items():
            metrics.CHANNEL_LAGGING.labels(channel).set(0 if version == production else 1)

    async def follow(self) -> None:
        while True:
            try:
                await self.refresh()
                await self.refresh_channels()
            except Exception:  # the registry may be briefly locked or unreachable
                log.exception("could not follow the production alias")
            await asyncio.sleep(self.settings.serving.alias_poll_s)

    async def _evict(self) -> None:
        limit = self.settings.serving.max_loaded_versions
        for name in list(self.loaded):  # oldest use first
            if len(self.loaded) <= limit:
                break
            model = self.loaded[name]
            if model is self.production or not model.batcher.idle:
                continue
            del self.loaded[name]
            await model.batcher.stop()
            metrics.MODEL_INFO.labels(name, "pinned", model.encoder.provider).set(0)
            log.info("unloaded version %s", name)
        self._publish_info()

    def _publish_info(self) -> None:
        for name, model in self.loaded.items():
            production = model is self.production
            provider = model.encoder.provider
            metrics.MODEL_INFO.labels(name, "production", provider).set(1 if production else 0)
            metrics.MODEL_INFO.labels(name, "pinned", provider).set(0 if production else 1)

    def _publish_compatibility(self, name: str) -> None:
        """The compatibility figures production was registered with, if its gates measured them."""
        gates = self.registry.get(name).metrics.get("gates") or {}
        figures, against = gates.get("compatibility"), gates.get("against")
        if not figures or not against:
            return
        metric = figures["metric"]
        for figure in ("cross", "own", "older"):
            metrics.COMPATIBILITY.labels(name, against, figure).set(figures[figure][metric])
        adapter = figures.get("adapter") or {}
        if adapter.get("served"):  # what embedloop@<name>~<against> retrieves from the older vectors
            metrics.COMPATIBILITY.labels(name, against, "adapter").set(adapter["cross"][metric])
        metrics.COMPATIBLE.labels(name, against).set(1 if figures["compatible"] else 0)

    async def stop(self) -> None:
        for model in self.loaded.values():
            await model.batcher.stop()
