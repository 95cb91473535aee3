"""Everything one process holds of a state folder: its settings and its stores, each opened once.

Built at the edge (a command, the service's start-up, the daemon's start-up) and passed down to
the checks, the retraining pipeline and the routes. Stores on one database share one engine (one
connection pool); stores are opened on first use, so a process pays only for what it touches.
"""

from __future__ import annotations

import threading
from functools import cached_property

from sqlalchemy import Engine

from embedloop.core.access.keys import KeyStore
from embedloop.core.history.checks import CheckStore
from embedloop.core.history.querylog import QueryLogStore
from embedloop.core.history.runs import RunStore
from embedloop.core.history.triggers import TriggerStore
from embedloop.core.labels.corpus import CorpusStore
from embedloop.core.labels.feedback import FeedbackStore
from embedloop.core.labels.probes import ProbeStore
from embedloop.core.models.channels import Channels
from embedloop.core.models.promotion import Promotion
from embedloop.core.models.registry import Registry
from embedloop.core.settings import Settings
from embedloop.core.storage.database import open_engine
from embedloop.core.storage.lease import Lease


class State:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()

    def engine(self, url: str) -> Engine:
        with self._lock:
            if url not in self._engines:
                if url.startswith("sqlite:///"):
                    self.settings.home.mkdir(parents=True, exist_ok=True)
                self._engines[url] = open_engine(url)
            return self._engines[url]

    # -- model versions -------------------------------------------------------------------------
    @cached_property
    def registry(self) -> Registry:
        return Registry(self.engine(self.settings.registry_url))

    @cached_property
    def promotion(self) -> Promotion:
        return Promotion(self.registry, self.settings.promotion)

    @property
    def channels(self) -> Channels:
        return self.promotion.channels

    @cached_property
    def keys(self) -> KeyStore:
        return KeyStore(self.registry)

    # -- labels ---------------------------------------------------------------------------------
    @cached_property
    def corpus(self) -> CorpusStore:
        return CorpusStore(self.engine(self.settings.monitoring_url))

    @cached_property
    def feedback(self) -> FeedbackStore:
        return FeedbackStore(self.engine(self.settings.monitoring_url))

    @cached_property
    def probes(self) -> ProbeStore:
        return ProbeStore(self.engine(self.settings.monitoring_url))

    # -- history --------------------------------------------------------------------------------
    @cached_property
    def querylog(self) -> QueryLogStore:
        return QueryLogStore(self.engine(self.settings.querylog_url))

    @cached_property
    def checks(self) -> CheckStore:
        return CheckStore(self.engine(self.settings.monitoring_url))

    @cached_property
    def triggers(self) -> TriggerStore:
        return TriggerStore(self.engine(self.settings.monitoring_url))

    @cached_property
    def runs(self) -> RunStore:
        return RunStore(self.engine(self.settings.monitoring_url))

    def lease(self, name: str, ttl_s: float) -> Lease:
        """A lease of this process on ``name`` (a new holder each call)."""
        return Lease(self.engine(self.settings.monitoring_url), name, ttl_s)

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
        for name in ("registry", "promotion", "keys", "corpus", "feedback", "probes", "querylog", "checks", "triggers",
                     "runs"):
            self.__dict__.pop(name, None)

    def __enter__(self) -> "State":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
