"""The BentoML service: BentoML runs the server, its metrics, health and lifecycle; the routes
are the ASGI app from :mod:`embedloop.service.app`.

``bentoml serve embedloop.service.bento:EmbeddingService`` (or ``embedloop serve``). This module is
the service's start-up edge: settings are read here, once per server process, from the environment
the command line hands over (``EMBEDLOOP_HOME`` and any ``EMBEDLOOP_*`` override).
"""

from __future__ import annotations

from embedloop.core.env import apply_defaults
from embedloop.core.settings import load_settings

settings = load_settings()
apply_defaults(settings.home)

import bentoml  # noqa: E402 - after the environment defaults

from embedloop.core.state import State  # noqa: E402
from embedloop.service.app import create_app  # noqa: E402
from embedloop.service.server import Server  # noqa: E402

app = create_app()


@bentoml.service(
    name="embedloop",
    workers=settings.serving.workers,
    traffic={
        # Our own deadline answers 504 first; BentoML's is the backstop.
        "timeout": int(settings.serving.request_timeout_s) + 30,
        "max_concurrency": None,
    },
    endpoints={"livez": "/livez", "readyz": "/readyz"},
    logging={"access": {"enabled": False}},
    # BentoML's tracer records a span (and child spans per ASGI message) for every request even
    # when no exporter is configured; on the hot path that was a third of the event loop's time.
    tracing={"excluded_urls": [] if settings.serving.trace_embeddings else ["/v1/embeddings"]},
    metrics={"enabled": True},
)
@bentoml.asgi_app(app)
class EmbeddingService:
    def __init__(self) -> None:
        self.server = Server(State(settings))
        app.state.server = self.server

    def __is_ready__(self) -> bool:
        return self.server.ready
