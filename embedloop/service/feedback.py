"""``POST /v1/feedback``: one judgement, or a list of them, stored durably before the answer.

Body: a :class:`~embedloop.core.feedback.FeedbackItem` object or a JSON array of them, e.g.
``{"query": "…", "positive_id": "doc-17", "negative_ids": ["doc-3"], "group": "GARD"}``. A batch is
validated whole and written in one transaction: any bad item -> 400 naming it, nothing written.
"""

from __future__ import annotations

import asyncio

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from embedloop.core.feedback import FeedbackError, FeedbackItem
from embedloop.service import metrics
from embedloop.service.body import parse_json, read_body
from embedloop.service.errors import ApiError


def parse_items(body: bytes, max_items: int) -> list[FeedbackItem]:
    payload = parse_json(body, object_only=False)
    records = payload if isinstance(payload, list) else [payload]
    if not records:
        raise ApiError(400, "no feedback items", code="empty_input")
    if len(records) > max_items:
        raise ApiError(400, f"{len(records)} items; at most {max_items} per request", code="too_many_inputs")
    items = []
    for i, record in enumerate(records):
        where = f"[{i}]" if isinstance(payload, list) else ""
        if not isinstance(record, dict):
            raise ApiError(400, f"item{where} must be a JSON object", code="invalid_value")
        try:
            items.append(FeedbackItem.model_validate(record))
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            field = ".".join(str(p) for p in first["loc"])
            param = f"{where}{'.' if where and field else ''}{field}" or None
            raise ApiError(400, f"item{where} {field + ': ' if field else ''}{first['msg']}",
                           code="invalid_value", param=param) from None
    return items


async def post_feedback(request: Request) -> Response:
    engine = request.app.state.engine
    status = 500
    try:
        items = parse_items(await read_body(request, engine.settings.serving.max_body_bytes),
                            engine.settings.serving.max_inputs)
        try:
            result = await asyncio.to_thread(engine.feedback.add, items, origin="api",
                                             probe_fraction=engine.settings.monitoring.probes.feedback_fraction)
        except FeedbackError as exc:
            raise ApiError(400, str(exc), code="unknown_document", param=f"[{exc.index}]") from None
        status = 200
        metrics.FEEDBACK.labels("training").inc(result.accepted - result.to_probes)
        metrics.FEEDBACK.labels("probes").inc(result.to_probes)
        return JSONResponse({"object": "feedback.result", "accepted": result.accepted,
                             "to_probes": result.to_probes, "duplicates": result.duplicates})
    except ApiError as exc:
        status = exc.status
        return exc.response()
    finally:
        metrics.REQUESTS.labels("feedback", str(status)).inc()
