"""The admin API: approve, reject and roll back versions, read versions and the audit log.

Mounted at ``/admin``, apart from the public API, and closed unless ``admin.token`` is set:
every request needs ``Authorization: Bearer <token>`` (compared in constant time; the token is
never logged). Each move is one audited registry transition (:mod:`embedloop.core.models.promotion`).
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from embedloop.service.body import parse_json
from embedloop.service.errors import ApiError
from embedloop.service.server import Server

DEFAULT_ACTOR = "admin-api"
MAX_BODY = 64 * 1024


def authorize(request: Request) -> Server:
    server: Server = request.app.state.server
    token = server.settings.admin.token
    if token is None:
        raise ApiError(503, "the admin API is off: set admin.token (EMBEDLOOP_ADMIN__TOKEN)", code="admin_disabled")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             token.get_secret_value().encode()):
        raise ApiError(401, "missing or wrong bearer token", code="unauthorized",
                       headers={"WWW-Authenticate": "Bearer"})
    return server


@dataclass(frozen=True)
class MoveRequest:
    actor: str
    reason: str
    to: str | None


async def read_move(request: Request) -> MoveRequest:
    """The body of a move: optional ``reason``, ``actor`` and ``to`` (strings)."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ApiError(413, "admin request body too large", code="request_too_large")
    payload = parse_json(body) if body.strip() else {}
    for key in ("reason", "actor", "to"):
        if payload.get(key) is not None and not isinstance(payload[key], str):
            raise ApiError(400, f"{key} must be a string", code="invalid_value", param=key)
    return MoveRequest(payload.get("actor") or DEFAULT_ACTOR, payload.get("reason") or "", payload.get("to"))


def admin(handler: Callable[[Request, Server], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handler(request, authorize(request))

    return endpoint


@admin
async def approve(request: Request, server: Server) -> Response:
    asked = await read_move(request)
    move = await asyncio.to_thread(server.state.promotion.approve, request.path_params["version"],
                                   actor=asked.actor, reason=asked.reason)
    return JSONResponse({"alias": move.alias, "from": move.from_version, "to": move.to_version})


@admin
async def reject(request: Request, server: Server) -> Response:
    version, asked = request.path_params["version"], await read_move(request)
    await asyncio.to_thread(server.state.promotion.reject, version, actor=asked.actor, reason=asked.reason)
    return JSONResponse({"version": version, "state": "rejected"})


@admin
async def rollback(request: Request, server: Server) -> Response:
    asked = await read_move(request)
    move = await asyncio.to_thread(server.state.promotion.rollback, to=asked.to, actor=asked.actor,
                                   reason=asked.reason)
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


routes = [
    Route("/admin/models", list_versions, methods=["GET"]),
    Route("/admin/history", history, methods=["GET"]),
    Route("/admin/models/{version}/approve", approve, methods=["POST"]),
    Route("/admin/models/{version}/reject", reject, methods=["POST"]),
    Route("/admin/rollback", rollback, methods=["POST"]),
]
