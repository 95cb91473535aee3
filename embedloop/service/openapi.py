"""``/openapi.json`` and ``/docs``: the API's contract, generated from the pydantic models the routes
validate with (and the ones describing what they answer), and a Swagger UI page served from the
``swagger-ui-bundle`` package (no CDN: the page works on a network without internet access)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.metadata import version as package_version

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from embedloop.api import admin as a
from embedloop.api import v1 as s
from embedloop.core.labels.feedback import FeedbackItem

ERRORS = {
    400: "invalid request (the error names the parameter)", 401: "no API key, or an unknown or revoked one",
    403: "the key lacks the route's scope", 404: "unknown model, version or key",
    409: "a move the version's state does not allow, or a key name taken", 413: "body too large",
    429: "overloaded or over a quota; see Retry-After", 503: "shutting down, model unavailable, or admin API off",
    504: "not answered within serving.request_timeout_s",
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    scope: str | None  # None: any valid key (once keys exist)
    answer: type[BaseModel]
    body: type[BaseModel] | None = None
    ok: int = 200
    errors: tuple[int, ...] = (400, 401, 403, 413)


OPERATIONS = [
    Operation("post", "/v1/embeddings", "Embed texts (OpenAI-compatible)", "embed", s.EmbeddingResponse,
              s.EmbeddingRequest, errors=(400, 401, 403, 404, 413, 429, 503, 504)),
    Operation("get", "/v1/models", "Servable versions", None, s.ModelList, errors=(401,)),
    Operation("post", "/v1/feedback", "Store feedback: one item or an array", "feedback", s.FeedbackResult,
              FeedbackItem, errors=(400, 401, 403, 413, 429)),
    Operation("get", "/admin/models", "Versions, states, gate figures", "admin", a.VersionList,
              errors=(401, 403, 503)),
    Operation("get", "/admin/history", "The audit log, newest first", "admin", a.AuditList,
              errors=(400, 401, 403, 503)),
    Operation("post", "/admin/models/{version}/approve", "Approve a candidate: it goes to production", "admin",
              a.AliasMoved, a.MoveBody, errors=(400, 401, 403, 404, 409, 413, 503)),
    Operation("post", "/admin/models/{version}/reject", "Reject a candidate", "admin", a.Rejected, a.MoveBody,
              errors=(400, 401, 403, 404, 409, 413, 503)),
    Operation("post", "/admin/rollback", "Production back to the previous (or a named) version", "admin",
              a.AliasMoved, a.MoveBody, errors=(400, 401, 403, 404, 409, 413, 503)),
    Operation("get", "/admin/channels", "Index channels: the version each serves and built its vectors",
              "admin", a.ChannelList, errors=(401, 403, 503)),
    Operation("post", "/admin/channels", "Create an index channel (embedloop@<name>)", "admin", a.ChannelCard,
              a.ChannelCreateBody, ok=201, errors=(400, 401, 403, 404, 409, 413, 503)),
    Operation("post", "/admin/channels/{name}/reindexed", "A channel's index was rebuilt with a version: move it",
              "admin", a.ChannelCard, a.ReindexedBody, errors=(400, 401, 403, 404, 409, 413, 503)),
    Operation("get", "/admin/keys", "API keys (never their secrets)", "admin", a.KeyList, errors=(401, 403, 503)),
    Operation("post", "/admin/keys", "Create an API key; the secret is in this answer only", "admin",
              a.KeyCreated, a.KeyCreateBody, ok=201, errors=(400, 401, 403, 409, 413, 503)),
    Operation("post", "/admin/keys/{name}/revoke", "Revoke an API key", "admin", a.KeyCard, a.Body,
              errors=(400, 401, 403, 404, 409, 413, 503)),
]


def ref(model: type[BaseModel]) -> dict:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def operation(op: Operation) -> dict:
    entry: dict = {
        "summary": op.summary, "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_')}",
        "tags": ["admin" if op.path.startswith("/admin") else "api"],
        "description": f"Needs a key with the `{op.scope}` scope once keys exist." if op.scope
        else "Needs any valid key once keys exist.",
        "security": [{"bearer": []}],
        "responses": {str(op.ok): {"description": "OK", "content": {"application/json": {"schema": ref(op.answer)}}},
                      **{str(code): {"description": ERRORS[code],
                                     "content": {"application/json": {"schema": ref(s.ErrorBody)}}}
                         for code in op.errors}},
    }
    params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
              for n in ("version", "name") if f"{{{n}}}" in op.path]
    if op.path == "/admin/history":
        params.append({"name": "limit", "in": "query", "required": False,
                       "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}})
    if params:
        entry["parameters"] = params
    if op.body is not None:
        schema = ref(op.body)
        if op.body is FeedbackItem:
            schema = {"oneOf": [schema, {"type": "array", "items": schema, "minItems": 1}]}
        entry["requestBody"] = {"required": op.body is not a.Body and op.body is not a.MoveBody,
                                "content": {"application/json": {"schema": schema}}}
    return entry


@functools.cache
def spec() -> dict:
    models = {op.answer for op in OPERATIONS} | {op.body for op in OPERATIONS if op.body} | {s.ErrorBody}
    _, schemas = models_json_schema(
        [(m, "validation" if m in {op.body for op in OPERATIONS} else "serialization")
         for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}")
    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "embedloop", "version": package_version("embedloop"),
                 "description": "A self-tuning embedding server: OpenAI-compatible embeddings, feedback, and "
                                "the admin API that approves, rejects and rolls back model versions."},
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {}),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


async def openapi_json(request: Request) -> Response:
    return JSONResponse(spec())


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>embedloop API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body></html>"""


async def docs_page(request: Request) -> Response:
    return HTMLResponse(PAGE)


def routes() -> list:
    from swagger_ui_bundle import swagger_ui_path

    return [Route("/openapi.json", openapi_json, methods=["GET"]), Route("/docs", docs_page, methods=["GET"]),
            Mount("/docs/static", StaticFiles(directory=swagger_ui_path), name="swagger-ui")]
