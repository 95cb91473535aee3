"""What every request leaves behind, in one place: its status and latency in the metrics, the
version that served it in a header, and its query-log record.

A route tells this middleware what it served through the request state: ``served_version`` once a
model version is chosen, ``querylog_record`` once it has succeeded. Errors, whichever handler
answers them, are observed the same way.
"""

from __future__ import annotations

import functools
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from embedloop.core.history.querylog import RequestRecord
from embedloop.service import metrics

VERSION_HEADER = "x-embedloop-version"
ENDPOINTS = {"/v1/embeddings": "embeddings", "/v1/feedback": "feedback", "/v1/models": "models"}


def endpoint_of(path: str) -> str:
    if path in ENDPOINTS:
        return ENDPOINTS[path]
    return "admin" if path.startswith("/admin") else "other"


# A metric's child per label set, looked up once: under overload the lookups were a tenth of the
# event loop's time per refusal.
@functools.cache
def request_counter(endpoint: str, status: int):
    return metrics.REQUESTS.labels(endpoint, str(status))


@functools.cache
def latency_histogram(endpoint: str):
    return metrics.REQUEST_LATENCY.labels(endpoint)


class ObservedRequests:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                version = state.get("served_version")
                if version is not None:
                    message["headers"] = [*message.get("headers", []),
                                          (VERSION_HEADER.encode(), version.encode())]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            elapsed = time.perf_counter() - started
            endpoint = endpoint_of(scope["path"])
            request_counter(endpoint, status).inc()
            latency_histogram(endpoint).observe(elapsed)
            self.log(scope, state, status, elapsed)

    @staticmethod
    def log(scope: Scope, state: dict, status: int, elapsed: float) -> None:
        writer = scope["app"].state.server.querylog
        version = state.get("served_version")
        if writer is None or version is None:  # refused before a version was chosen: nothing to attribute
            return
        record: RequestRecord = state.get("querylog_record") or RequestRecord(version, status, 0, 0, 0.0)
        record.status, record.latency_ms, record.key = status, elapsed * 1000, state.get("key")
        writer.submit(record)
        metrics.QUERYLOG_DEPTH.set(writer.depth())
