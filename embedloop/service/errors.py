"""Errors in the OpenAI shape, ``{"error": {"message", "type", "param", "code"}}``, with the right
status: one handler per exception type, registered once on the app, so routes just raise."""

from __future__ import annotations

import logging

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from embedloop.core.access.keys import AccessError, KeyConflict, UnknownKey
from embedloop.core.labels.feedback import DailyQuotaExceeded, FeedbackError
from embedloop.core.models.channels import UnknownChannel
from embedloop.core.models.registry import RegistryError, UnknownVersion
from embedloop.service import metrics
from embedloop.service.admission import Overloaded
from embedloop.service.batcher import DeadlineExceeded
from embedloop.service.pool import VersionUnavailable
from embedloop.service.quotas import QuotaExceeded

log = logging.getLogger(__name__)

ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable",
    504: "timeout_error",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, code: str, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = headers or {}

    def response(self) -> Response:
        body = {"error": {"message": self.message, "type": ERROR_TYPES.get(self.status, "invalid_request_error"),
                          "param": self.param, "code": self.code}}
        # orjson: under overload most answers are refusals, and each one's cost is the event loop's
        return Response(orjson.dumps(body), status_code=self.status, headers=self.headers,
                        media_type="application/json")


async def api_error(request: Request, exc: ApiError) -> Response:
    return exc.response()


async def unknown_version(request: Request, exc: UnknownVersion) -> Response:
    return ApiError(404, str(exc), code="model_not_found", param="model").response()


async def unknown_channel(request: Request, exc: UnknownChannel) -> Response:
    return ApiError(404, str(exc), code="channel_not_found").response()


async def registry_conflict(request: Request, exc: RegistryError) -> Response:
    """A move the version's state does not allow."""
    return ApiError(409, str(exc), code="conflict").response()


async def version_unavailable(request: Request, exc: VersionUnavailable) -> Response:
    return ApiError(503, str(exc), code="model_unavailable", param="model").response()


async def bad_feedback(request: Request, exc: FeedbackError) -> Response:
    return ApiError(400, str(exc), code="unknown_document", param=f"[{exc.index}]").response()


async def overloaded(request: Request, exc: Overloaded) -> Response:
    metrics.REJECTED.labels("overloaded").inc()
    return ApiError(429, f"overloaded: {exc}; retry after {exc.retry_after_s} s", code="overloaded",
                    headers={"Retry-After": str(exc.retry_after_s)}).response()


async def over_quota(request: Request, exc: QuotaExceeded) -> Response:
    metrics.QUOTA_REFUSALS.labels(exc.key, exc.quota).inc()
    if exc.retry_after_s is None:  # a request larger than the whole quota: retrying cannot help
        return ApiError(400, str(exc), code="request_exceeds_quota").response()
    return ApiError(429, f"{exc}; retry after {exc.retry_after_s} s", code="quota_exceeded",
                    headers={"Retry-After": str(exc.retry_after_s)}).response()


async def over_daily_quota(request: Request, exc: DailyQuotaExceeded) -> Response:
    return await over_quota(request, QuotaExceeded(exc.key, "feedback_items_per_day", str(exc), exc.retry_after_s))


async def bad_key_request(request: Request, exc: AccessError) -> Response:
    status, code = (409, "conflict") if isinstance(exc, KeyConflict) else \
        (404, "key_not_found") if isinstance(exc, UnknownKey) else (400, "invalid_value")
    return ApiError(status, str(exc), code=code).response()


async def deadline_exceeded(request: Request, exc: DeadlineExceeded) -> Response:
    metrics.REJECTED.labels("deadline").inc()
    timeout = request.app.state.server.settings.serving.request_timeout_s
    return ApiError(504, f"not answered within {timeout:g} s", code="deadline_exceeded").response()


async def client_disconnect(request: Request, exc: ClientDisconnect) -> Response:
    return Response(status_code=499)  # the client went away; nobody reads this response


async def http_error(request: Request, exc: HTTPException) -> Response:
    return ApiError(exc.status_code, exc.detail or "error", code=f"http_{exc.status_code}").response()


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return ApiError(500, "internal error; see the server log", code="internal_error").response()


HANDLERS = {
    ApiError: api_error,
    UnknownVersion: unknown_version,
    UnknownChannel: unknown_channel,
    RegistryError: registry_conflict,
    VersionUnavailable: version_unavailable,
    FeedbackError: bad_feedback,
    Overloaded: overloaded,
    QuotaExceeded: over_quota,
    DailyQuotaExceeded: over_daily_quota,
    AccessError: bad_key_request,
    DeadlineExceeded: deadline_exceeded,
    ClientDisconnect: client_disconnect,
    HTTPException: http_error,
    Exception: unexpected_error,
}
