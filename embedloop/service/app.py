"""The ASGI app: the public routes, the admin routes, one error handler per exception type, and
one middleware that observes every request (:mod:`embedloop.service.observe`)."""

from __future__ import annotations

import contextlib

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from embedloop.service.admin import routes as admin_routes
from embedloop.service.embeddings import embeddings, list_models
from embedloop.service.errors import HANDLERS
from embedloop.service.feedback import post_feedback
from embedloop.service.observe import ObservedRequests
from embedloop.service.openapi import routes as openapi_routes
from embedloop.service.review.pages import routes as review_routes
from embedloop.service.server import Server


def create_app(server: Server | None = None) -> Starlette:
    """The app; ``server`` may be attached later as ``app.state.server`` (BentoML creates it in
    the service), and is started and stopped with the app."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await app.state.server.start()
        try:
            yield
        finally:
            await app.state.server.stop()

    app = Starlette(
        routes=[
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/feedback", post_feedback, methods=["POST"]),
            *admin_routes,
            *review_routes,
            *openapi_routes(),
        ],
        middleware=[Middleware(ObservedRequests)],
        exception_handlers=HANDLERS,
        lifespan=lifespan,
    )
    app.state.server = server
    return app
