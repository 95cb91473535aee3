"""The HTTP routes: ``POST /v1/embeddings``, ``GET /v1/models`` (OpenAI-compatible)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import time

import numpy as np
import orjson
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from embedloop.core.encoder import normalize_rows
from embedloop.core.querylog import RequestRecord, SampledText
from embedloop.service import metrics
from embedloop.service.admin import routes as admin_routes
from embedloop.service.batcher import QueueFull
from embedloop.service.body import parse_json, read_body
from embedloop.service.engine import Engine
from embedloop.service.errors import ApiError
from embedloop.service.feedback import post_feedback
from embedloop.service.pool import LoadedModel, UnknownVersion, VersionUnavailable
from embedloop.service.schemas import EmbeddingRequest

log = logging.getLogger(__name__)

VERSION_HEADER = "x-embedloop-version"
TOKENIZE_INLINE_MAX = 64  # bigger requests tokenize in a thread so the event loop stays free


def parse_request(body: bytes, max_inputs: int) -> EmbeddingRequest:
    payload = parse_json(body)
    try:
        req = EmbeddingRequest.model_validate(payload)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        worst = max(errors, key=lambda e: len(e["loc"]))  # of a union's alternatives, the deepest says most
        param = str(worst["loc"][0]) if worst["loc"] else None
        where = "".join(f"[{p}]" if isinstance(p, int) else "" for p in worst["loc"][1:])
        raise ApiError(400, f"{param}{where}: {worst['msg']}", code="invalid_value", param=param) from None
    texts = req.texts()
    if not texts:
        raise ApiError(400, "input must contain at least one text", code="empty_input", param="input")
    if len(texts) > max_inputs:
        raise ApiError(400, f"input has {len(texts)} texts; at most {max_inputs} per request",
                       code="too_many_inputs", param="input")
    for i, text in enumerate(texts):
        if not text.strip():
            raise ApiError(400, f"input[{i}] is empty", code="empty_input", param="input")
    return req


def requested_version(model: str, alias: str) -> str | None:
    """None for the production alias, else the pinned version name; 404 for anything else."""
    if model in (alias, f"{alias}@production"):
        return None
    prefix = f"{alias}@"
    if model.startswith(prefix) and len(model) > len(prefix):
        return model[len(prefix):]
    raise ApiError(404, f"model {model!r} does not exist; use {alias!r} or {alias}@<version>",
                   code="model_not_found", param="model")


def shape_vectors(vectors: np.ndarray, dimensions: int | None) -> np.ndarray:
    if dimensions is None or dimensions == vectors.shape[1]:
        return vectors
    return normalize_rows(vectors[:, :dimensions])


def encode_vectors(vectors: np.ndarray, encoding_format: str) -> list:
    if encoding_format == "base64":
        return [base64.b64encode(v.astype("<f4").tobytes()).decode("ascii") for v in vectors]
    return list(vectors)


async def embeddings(request: Request) -> Response:
    engine: Engine = request.app.state.engine
    settings = engine.settings.serving
    started = time.perf_counter()
    deadline = time.monotonic() + settings.request_timeout_s
    status, model, record = 500, None, None
    try:
        if engine.draining:
            raise ApiError(503, "server is shutting down", code="shutting_down")
        req = parse_request(await read_body(request, settings.max_body_bytes), settings.max_inputs)
        model = await resolve(engine, requested_version(req.model, settings.model_alias))
        texts = req.texts()
        encoder = model.encoder
        if req.dimensions is not None and req.dimensions > encoder.dimensions:
            raise ApiError(400, f"dimensions must be between 1 and {encoder.dimensions}",
                           code="invalid_value", param="dimensions")
        tokens = encoder.tokenize(texts) if len(texts) <= TOKENIZE_INLINE_MAX \
            else await asyncio.to_thread(encoder.tokenize, texts)
        truncated = sum(t.truncated for t in tokens)
        if truncated and not req.truncate:
            first = next(i for i, t in enumerate(tokens) if t.truncated)
            raise ApiError(400, f"input[{first}] is longer than {encoder.max_seq_length} tokens and truncate "
                           "is false", code="input_too_long", param="input")
        try:
            vectors = await until_disconnect(request, model.batcher.submit([t.ids for t in tokens], deadline))
        except QueueFull:
            metrics.REJECTED.labels("queue_full").inc()
            raise ApiError(429, "too many texts are waiting; retry shortly", code="overloaded",
                           headers={"Retry-After": str(settings.retry_after_s)}) from None
        except TimeoutError:
            metrics.REJECTED.labels("deadline").inc()
            raise ApiError(504, f"not answered within {settings.request_timeout_s:g} s",
                           code="deadline_exceeded") from None
        n_tokens = sum(t.n_tokens for t in tokens)
        version = model.version
        metrics.TEXTS.labels(version).inc(len(texts))
        metrics.TOKENS.labels(version).inc(n_tokens)
        if truncated:
            metrics.TRUNCATIONS.labels(version).inc(truncated)
        shaped = shape_vectors(vectors, req.dimensions)
        body = {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": e}
                     for i, e in enumerate(encode_vectors(shaped, req.encoding_format))],
            "model": f"{settings.model_alias}@{version}",
            "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
        }
        status = 200
        record = RequestRecord(version, 200, len(texts), n_tokens, 0.0,
                               samples=sample_texts(engine, texts, tokens, vectors))
        return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json",
                        headers={VERSION_HEADER: version})
    except ApiError as exc:
        status = exc.status
        response = exc.response()
        if model is not None:
            response.headers[VERSION_HEADER] = model.version
        return response
    except ClientDisconnect:
        status = 499  # the client went away; nobody reads this response
        return Response(status_code=499)
    finally:
        elapsed = time.perf_counter() - started
        metrics.REQUESTS.labels("embeddings", str(status)).inc()
        metrics.REQUEST_LATENCY.labels("embeddings").observe(elapsed)
        if engine.querylog is not None:
            if record is None and model is not None:
                record = RequestRecord(model.version, status, 0, 0, 0.0)
            if record is not None:
                record.latency_ms = elapsed * 1000
                engine.querylog.submit(record)
                metrics.QUERYLOG_DEPTH.set(engine.querylog.depth())


async def until_disconnect(request: Request, work):
    """Await ``work``, cancelling it if the client goes away first: an abandoned request's queued
    texts are then skipped instead of delaying everyone behind them."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(request.receive())  # after the body, the next message is a disconnect
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task not in done:
        task.cancel()
        raise ClientDisconnect()
    return task.result()


async def resolve(engine: Engine, version: str | None) -> LoadedModel:
    try:
        return await engine.pool.resolve(version)
    except UnknownVersion:
        raise ApiError(404, f"model version {version!r} does not exist", code="model_not_found",
                       param="model") from None
    except VersionUnavailable as exc:
        raise ApiError(503, str(exc), code="model_unavailable", param="model") from None


def sample_texts(engine: Engine, texts, tokens, vectors) -> list[SampledText]:
    rate = engine.settings.querylog.sample_rate
    if engine.querylog is None or rate <= 0:
        return []
    return [SampledText(text, tok.n_tokens, vec) for text, tok, vec in zip(texts, tokens, vectors)
            if random.random() < rate]


async def list_models(request: Request) -> Response:
    engine: Engine = request.app.state.engine
    alias = engine.settings.serving.model_alias
    versions = await asyncio.to_thread(engine.registry.versions)
    production = engine.pool.production.version if engine.pool.production else None
    cards = []
    for v in versions:
        card = {"object": "model", "created": int(v.created_at.timestamp()), "owned_by": "embedloop",
                "version": v.name, "dimensions": v.manifest["dimensions"],
                "max_input_tokens": v.manifest["max_seq_length"]}
        if v.name == production:
            cards.insert(0, {"id": alias, **card})
        cards.append({"id": f"{alias}@{v.name}", **card})
    return JSONResponse({"object": "list", "data": cards})


async def http_error(request: Request, exc: HTTPException) -> Response:
    return ApiError(exc.status_code, exc.detail or "error", code=f"http_{exc.status_code}").response()


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path)
    return ApiError(500, "internal error; see the server log", code="internal_error").response()


def create_app(engine: Engine | None = None) -> Starlette:
    """The ASGI app. ``engine`` may be attached later (BentoML creates it in the service)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await app.state.engine.start()
        try:
            yield
        finally:
            await app.state.engine.stop()

    app = Starlette(
        routes=[
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/feedback", post_feedback, methods=["POST"]),
            *admin_routes,
        ],
        exception_handlers={HTTPException: http_error, Exception: unexpected_error},
        lifespan=lifespan,
    )
    app.state.engine = engine
    return app
