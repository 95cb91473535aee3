"""The admin API: approve, reject and roll back versions, read the audit log.

Mounted at ``/admin``, apart from the public API, and closed unless ``admin.token`` is set:
every request needs ``Authorization: Bearer <token>`` (compared in constant time; the token is
never logged). Each move is one registry transaction with its audit entry.
"""

from __future__ import annotations

import asyncio
import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from embedloop.core import promotion
from embedloop.core.registry import RegistryError, UnknownVersion
from embedloop.service.body import parse_json
from embedloop.service.errors import ApiError

DEFAULT_ACTOR = "admin-api"


def authorize(request: Request) -> None:
    token = request.app.state.engine.settings.admin.token
    if token is None:
        raise ApiError(503, "the admin API is off: set admin.token (EMBEDLOOP_ADMIN__TOKEN)", code="admin_disabled")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             token.get_secret_value().encode()):
        raise ApiError(401, "missing or wrong bearer token", code="unauthorized",
                       headers={"WWW-Authenticate": "Bearer"})


async def read_json(request: Request) -> dict:
    body = await request.body()
    if len(body) > 64 * 1024:
        raise ApiError(413, "admin request body too large", code="request_too_large")
    if not body.strip():
        return {}
    payload = parse_json(body)
    for key in ("reason", "actor", "to"):
        if key in payload and payload[key] is not None and not isinstance(payload[key], str):
            raise ApiError(400, f"{key} must be a string", code="invalid_value", param=key)
    return payload


def guarded(handler):
    async def endpoint(request: Request) -> Response:
        try:
            authorize(request)
            return await handler(request)
        except ApiError as exc:
            return exc.response()
        except UnknownVersion as exc:
            return ApiError(404, str(exc), code="model_not_found").response()
        except RegistryError as exc:
            return ApiError(409, str(exc), code="conflict").response()

    return endpoint


def move(action: str):
    async def handler(request: Request) -> Response:
        engine = request.app.state.engine
        payload = await read_json(request)
        actor, reason = payload.get("actor") or DEFAULT_ACTOR, payload.get("reason") or ""
        version = request.path_params.get("version")
        if action == "approve":
            result = await asyncio.to_thread(promotion.approve, engine.settings, engine.registry, version,
                                             actor=actor, reason=reason)
        elif action == "reject":
            await asyncio.to_thread(promotion.reject, engine.settings, engine.registry, version, actor=actor,
                                    reason=reason)
            return JSONResponse({"version": version, "state": "rejected"})
        else:
            result = await asyncio.to_thread(promotion.rollback, engine.settings, engine.registry,
                                             to=payload.get("to"), actor=actor, reason=reason)
        return JSONResponse({"alias": result.alias, "from": result.from_version, "to": result.to_version})

    return handler


async def list_versions(request: Request) -> Response:
    registry = request.app.state.engine.registry
    versions, states, aliases = await asyncio.to_thread(
        lambda: (registry.versions(), registry.states(), registry.aliases()))
    return JSONResponse({"data": [{
        "version": v.name, "parent": v.parent, "created_at": v.created_at.isoformat(),
        "state": states[v.name].state if v.name in states else None,
        "reasons": states[v.name].reasons if v.name in states else [],
        "aliases": sorted(a for a, target in aliases.items() if target == v.name),
        "metrics": v.metrics, "training": v.training} for v in versions]})


async def history(request: Request) -> Response:
    limit = request.query_params.get("limit", "100")
    if not limit.isdigit() or not 1 <= int(limit) <= 10_000:
        raise ApiError(400, "limit must be an integer between 1 and 10000", code="invalid_value", param="limit")
    entries = await asyncio.to_thread(request.app.state.engine.registry.history, int(limit))
    return JSONResponse({"data": [{
        "id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action, "alias": e.alias,
        "from": e.from_version, "to": e.to_version, "reason": e.reason, "details": e.details} for e in entries]})


routes = [
    Route("/admin/models", guarded(list_versions), methods=["GET"]),
    Route("/admin/history", guarded(history), methods=["GET"]),
    Route("/admin/models/{version}/approve", guarded(move("approve")), methods=["POST"]),
    Route("/admin/models/{version}/reject", guarded(move("reject")), methods=["POST"]),
    Route("/admin/rollback", guarded(move("rollback")), methods=["POST"]),
]
