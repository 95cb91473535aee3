"""Reading a request body with a size limit (413 past it), before any parsing."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from embedloop.service.errors import ApiError


def declared_length(request: Request) -> int | None:
    """The body size the ``Content-Length`` header announces, if it is there and a number."""
    declared = request.headers.get("content-length")
    return int(declared) if declared is not None and declared.isdigit() else None


async def read_body(request: Request, limit: int) -> bytes:
    too_big = ApiError(413, f"request body larger than {limit} bytes", code="request_too_large")
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes, *, object_only: bool = True) -> Any:
    """The decoded body; 400 ``invalid_json`` when it is not JSON (or not an object, if asked)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if object_only and not isinstance(payload, dict):
        raise ApiError(400, "request body must be a JSON object", code="invalid_json")
    return payload
