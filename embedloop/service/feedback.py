"""``POST /v1/feedback``: one judgement, or a list of them, stored durably before the answer.

Body: a :class:`~embedloop.core.labels.feedback.FeedbackItem` object or a JSON array of them, e.g.
``{"query": "…", "positive_id": "doc-17", "negative_ids": ["doc-3"], "group": "GARD"}``. A batch is
validated whole and written in one transaction: any bad item -> 400 naming it, nothing written.
Needs a key with the ``feedback`` scope once keys exist; the key's name is stored with each item and
its daily quota is counted in the same transaction.
"""

from __future__ import annotations

import asyncio

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from embedloop.core.access.keys import Scope
from embedloop.core.labels.feedback import FeedbackItem
from embedloop.core.validation import first_problem
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
            problem = first_problem(exc)
            param = f"{where}{'.' if where and problem.field else ''}{problem.field}" or None
            raise ApiError(400, f"item{where} {problem}", code="invalid_value", param=param) from None
    return items


async def post_feedback(request: Request) -> Response:
    server = request.app.state.server
    serving = server.settings.serving
    key = server.access.require(request, Scope.FEEDBACK)
    items = parse_items(await read_body(request, serving.max_body_bytes), serving.max_inputs)
    result = await asyncio.to_thread(
        server.state.feedback.add, items, origin="api", probe_fraction=server.settings.probes.feedback_fraction,
        key=key.name if key else None,
        daily_limit=server.access.quotas.limit(key, "feedback_items_per_day") if key else None)
    metrics.FEEDBACK.labels("training").inc(result.accepted - result.to_probes)
    metrics.FEEDBACK.labels("probes").inc(result.to_probes)
    return JSONResponse({"object": "feedback.result", "accepted": result.accepted,
                         "to_probes": result.to_probes, "duplicates": result.duplicates})
