"""Reading a request body with a size limit (413 past it), before any parsing."""

from __future__ import annotations

from starlette.requests import Request

from embedloop.service.errors import ApiError


async def read_body(request: Request, limit: int) -> bytes:
    too_big = ApiError(413, f"request body larger than {limit} bytes", code="request_too_large")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)
