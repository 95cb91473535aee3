"""The admin API: approve, reject and roll back versions, read versions and the audit log, manage
index channels and API keys.

Every request needs a key with the ``admin`` scope (or ``admin.token``), checked by
:mod:`embedloop.service.access`. Each move is one audited registry transition
(:mod:`embedloop.core.models.promotion`), audited under the key's name; an ``actor`` in the body
(the person behind a shared key) is recorded beside it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from embedloop.api.admin import Body, ChannelCreateBody, KeyCreateBody, MoveBody, ReindexedBody
from embedloop.core.access.keys import ApiKey, Scope, check_quotas, parse_scopes
from embedloop.core.models.channels import Channel
from embedloop.core.models.registry import PRODUCTION
from embedloop.core.validation import first_problem
from embedloop.service.body import parse_json
from embedloop.service.errors import ApiError
from embedloop.service.server import Server

MAX_BODY = 64 * 1024
B = TypeVar("B", bound=BaseModel)


async def read(request: Request, model: type[B]) -> B:
    """The body as ``model`` (an empty body is an empty object); 400 naming the first problem."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ApiError(413, "admin request body too large", code="request_too_large")
    try:
        return model.model_validate(parse_json(body) if body.strip() else {})
    except ValidationError as exc:
        problem = first_problem(exc)
        raise ApiError(400, str(problem), code="invalid_value", param=problem.field or None) from None


def actor_of(request: Request, body: Body) -> str:
    key: ApiKey = request.state.admin_key
    return f"{body.actor} (key:{key.name})" if body.actor else f"key:{key.name}"


def admin(handler: Callable[[Request, Server], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        server: Server = request.app.state.server
        request.state.admin_key = server.access.require(request, Scope.ADMIN)
        return await handler(request, server)

    return endpoint


@admin
async def approve(request: Request, server: Server) -> Response:
    asked = await read(request, MoveBody)
    move = await asyncio.to_thread(server.state.promotion.approve, request.path_params["version"],
                                   actor=actor_of(request, asked), reason=asked.reason or "")
    return JSONResponse({"alias": move.alias, "from": move.from_version, "to": move.to_version})


@admin
async def reject(request: Request, server: Server) -> Response:
    version, asked = request.path_params["version"], await read(request, MoveBody)
    await asyncio.to_thread(server.state.promotion.reject, version, actor=actor_of(request, asked),
                            reason=asked.reason or "")
    return JSONResponse({"version": version, "state": "rejected"})


@admin
async def rollback(request: Request, server: Server) -> Response:
    asked = await read(request, MoveBody)
    move = await asyncio.to_thread(server.state.promotion.rollback, to=asked.to, actor=actor_of(request, asked),
                                   reason=asked.reason or "")
    return JSONResponse({"alias": move.alias, "from": move.from_version, "to": move.to_version})


@admin
async def list_versions(request: Request, server: Server) -> Response:
    registry = server.state.registry
    versions, states, aliases = await asyncio.to_thread(
        lambda: (registry.versions(), registry.states(), registry.aliases()))
    return JSONResponse({"data": [{
        "version": v.name, "parent": v.parent, "created_at": v.created_at.isoformat(),
        "state": states[v.name].state if v.name in states else None,
        "reasons": states[v.name].reasons if v.name in states else [],
        "aliases": sorted(a for a, target in aliases.items() if target == v.name),
        "metrics": v.metrics, "training": v.training} for v in versions]})


@admin
async def history(request: Request, server: Server) -> Response:
    limit = request.query_params.get("limit", "100")
    if not limit.isdigit() or not 1 <= int(limit) <= 10_000:
        raise ApiError(400, "limit must be an integer between 1 and 10000", code="invalid_value", param="limit")
    entries = await asyncio.to_thread(server.state.registry.history, int(limit))
    return JSONResponse({"data": [{
        "id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action, "alias": e.alias,
        "from": e.from_version, "to": e.to_version, "reason": e.reason, "details": e.details} for e in entries]})


def key_card(key: ApiKey) -> dict:
    return {"name": key.name, "key_id": key.key_id, "scopes": sorted(s.value for s in key.scopes),
            "quotas": key.quotas, "created_at": key.created_at.isoformat(), "created_by": key.created_by,
            "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None}


@admin
async def list_keys(request: Request, server: Server) -> Response:
    keys = await asyncio.to_thread(server.state.keys.keys)
    return JSONResponse({"data": [key_card(k) for k in keys]})


@admin
async def create_key(request: Request, server: Server) -> Response:
    """``{"name": …, "scopes": ["embed", …], "quotas": {…}, "reason": …}``; the secret is in this answer only."""
    asked = await read(request, KeyCreateBody)
    key, secret = await asyncio.to_thread(
        server.state.keys.create, asked.name, parse_scopes(asked.scopes), quotas=check_quotas(asked.quotas),
        actor=actor_of(request, asked), reason=asked.reason or "")
    await asyncio.to_thread(server.access.load)  # usable at once here; other processes within access.refresh_s
    return JSONResponse({**key_card(key), "secret": secret}, status_code=201)


@admin
async def revoke_key(request: Request, server: Server) -> Response:
    asked = await read(request, Body)
    key = await asyncio.to_thread(server.state.keys.revoke, request.path_params["name"],
                                  actor=actor_of(request, asked), reason=asked.reason or "")
    await asyncio.to_thread(server.access.load)
    return JSONResponse(key_card(key))


def channel_card(channel: Channel, production: str | None) -> dict:
    return {"name": channel.name, "serves": channel.serves, "built_with": channel.built_with,
            "lagging": channel.serves != production, "adapt": channel.adapt,
            "created_at": channel.created_at.isoformat()}


@admin
async def list_channels(request: Request, server: Server) -> Response:
    state = server.state
    channels, production = await asyncio.to_thread(lambda: (state.channels.list(), state.registry.alias(PRODUCTION)))
    return JSONResponse({"data": [channel_card(c, production) for c in channels]})


async def channel_moved(server: Server, move: Callable[[], Channel], status: int = 200) -> Response:
    """Make a channel move (in a thread, like every registry write), answer its card, and let the pool
    resolve the channel's new version at once."""
    def moved() -> dict:
        return channel_card(move(), server.state.registry.alias(PRODUCTION))

    card = await asyncio.to_thread(moved)
    await server.pool.refresh_channels()
    return JSONResponse(card, status_code=status)


@admin
async def create_channel(request: Request, server: Server) -> Response:
    asked = await read(request, ChannelCreateBody)
    return await channel_moved(server, lambda: server.state.channels.create(
        asked.name, asked.version, adapt=asked.adapt, actor=actor_of(request, asked), reason=asked.reason or ""),
        status=201)


@admin
async def channel_reindexed(request: Request, server: Server) -> Response:
    asked = await read(request, ReindexedBody)
    return await channel_moved(server, lambda: server.state.channels.reindexed(
        request.path_params["name"], asked.to, actor=actor_of(request, asked), reason=asked.reason or ""))


routes = [
    Route("/admin/channels", list_channels, methods=["GET"]),
    Route("/admin/channels", create_channel, methods=["POST"]),
    Route("/admin/channels/{name}/reindexed", channel_reindexed, methods=["POST"]),
    Route("/admin/keys", list_keys, methods=["GET"]),
    Route("/admin/keys", create_key, methods=["POST"]),
    Route("/admin/keys/{name}/revoke", revoke_key, methods=["POST"]),
    Route("/admin/models", list_versions, methods=["GET"]),
    Route("/admin/history", history, methods=["GET"]),
    Route("/admin/models/{version}/approve", approve, methods=["POST"]),
    Route("/admin/models/{version}/reject", reject, methods=["POST"]),
    Route("/admin/rollback", rollback, methods=["POST"]),
]
