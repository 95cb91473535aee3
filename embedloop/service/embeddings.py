"""``POST /v1/embeddings`` and ``GET /v1/models``, OpenAI-compatible.

A request's steps: refuse while draining; check its key's scope and request quota; refuse while the
queue has no room for the tokens the body's length suggests (before the body is read); read and
validate the body; count its texts against the key's quota; admit its texts or refuse them
(:mod:`embedloop.service.admission`); choose the version, tokenize, queue the texts for the batcher,
shape the vectors, answer. Errors are raised and answered by their handlers
(:mod:`embedloop.service.errors`); metrics and the query log are :mod:`embedloop.service.observe`'s.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time

import numpy as np
import orjson
from pydantic import ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from embedloop.api.v1 import EmbeddingRequest
from embedloop.core.access.keys import Scope
from embedloop.core.history.querylog import RequestRecord, SampledText
from embedloop.core.models.adapters import adapter_name, adapters_of, parse_adapter_name
from embedloop.core.models.encoder import TokenizedText, normalize_rows
from embedloop.core.validation import first_problem
from embedloop.service import metrics
from embedloop.service.admission import Reservation
from embedloop.service.body import declared_length, parse_json, read_body
from embedloop.service.errors import ApiError
from embedloop.service.server import Server

TOKENIZE_INLINE_MAX = 64  # bigger requests tokenize in a thread so the event loop stays free


def parse_request(body: bytes, max_inputs: int) -> EmbeddingRequest:
    try:
        req = EmbeddingRequest.model_validate(parse_json(body))
    except ValidationError as exc:
        problem = first_problem(exc, deepest=True)
        param = str(problem.loc[0]) if problem.loc else None
        where = "".join(f"[{p}]" if isinstance(p, int) else "" for p in problem.loc[1:])
        raise ApiError(400, f"{param}{where}: {problem.message}", code="invalid_value", param=param) from None
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
    raise ApiError(404, f"model {model!r} does not exist; use {alias!r}, {alias}@<version>, {alias}@<channel> or "
                   f"{alias}@<version>~<older version> (a query adapter)",
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
    server: Server = request.app.state.server
    settings = server.settings.serving
    deadline = time.monotonic() + settings.request_timeout_s
    if server.draining:
        raise ApiError(503, "server is shutting down", code="shutting_down")
    key = server.access.require(request, Scope.EMBED)
    server.access.quotas.take(key, "embed_requests_per_s")
    admission = server.admission
    admission.check(1, admission.tokens_in(declared_length(request)))
    body = await read_body(request, settings.max_body_bytes)
    req = parse_request(body, settings.max_inputs)
    server.access.quotas.take(key, "embed_texts_per_min", len(req.texts()))
    with admission.admit(len(req.texts()), admission.tokens_in(len(body)), len(body)) as reservation:
        return await embed_admitted(request, server, req, deadline, reservation)


async def embed_admitted(request: Request, server: Server, req: EmbeddingRequest, deadline: float,
                         reservation: Reservation) -> Response:
    settings = server.settings.serving
    model = await server.pool.resolve(requested_version(req.model, settings.model_alias))
    request.state.served_version = version = model.version
    texts, encoder = req.texts(), model.encoder
    if req.dimensions is not None and req.dimensions > encoder.dimensions:
        raise ApiError(400, f"dimensions must be between 1 and {encoder.dimensions}",
                       code="invalid_value", param="dimensions")
    tokens = encoder.tokenize(texts) if len(texts) <= TOKENIZE_INLINE_MAX \
        else await asyncio.to_thread(encoder.tokenize, texts)
    n_tokens = sum(t.n_tokens for t in tokens)
    server.admission.settle(reservation, n_tokens)
    truncated = sum(t.truncated for t in tokens)
    if truncated and not req.truncate:
        first = next(i for i, t in enumerate(tokens) if t.truncated)
        raise ApiError(400, f"input[{first}] is longer than {encoder.max_seq_length} tokens and truncate "
                       "is false", code="input_too_long", param="input")
    vectors = await until_disconnect(request, model.batcher.submit([t.ids for t in tokens], deadline))
    metrics.TEXTS.labels(version).inc(len(texts))
    metrics.TOKENS.labels(version).inc(n_tokens)
    if truncated:
        metrics.TRUNCATIONS.labels(version).inc(truncated)
    served = shape_vectors(model.shape(vectors), req.dimensions)  # the query log keeps the version's own
    body = {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": e}
                 for i, e in enumerate(encode_vectors(served, req.encoding_format))],
        "model": f"{settings.model_alias}@{model.name}",
        "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
    }
    request.state.querylog_record = RequestRecord(version, 200, len(texts), n_tokens, 0.0,
                                                  samples=sample_texts(server, texts, tokens, vectors))
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


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


def sample_texts(server: Server, texts: list[str], tokens: list[TokenizedText],
                 vectors: np.ndarray) -> list[SampledText]:
    rate = server.settings.querylog.sample_rate
    if server.querylog is None or rate <= 0:
        return []
    return [SampledText(text, tok.n_tokens, vec) for text, tok, vec in zip(texts, tokens, vectors)
            if random.random() < rate]


async def list_models(request: Request) -> Response:
    server: Server = request.app.state.server
    server.access.require(request, None)
    alias = server.settings.serving.model_alias
    versions = await asyncio.to_thread(server.state.registry.versions)
    production = server.pool.production.version if server.pool.production else None
    await server.pool.refresh_channels()
    cards, by_version = [], {}
    for v in versions:
        card = by_version[v.name] = {
            "object": "model", "created": int(v.created_at.timestamp()), "owned_by": "embedloop", "version": v.name,
            "dimensions": v.manifest["dimensions"], "max_input_tokens": v.manifest["max_seq_length"]}
        if v.name == production:
            cards.insert(0, {"id": alias, **card})
        cards.append({"id": f"{alias}@{v.name}", **card})
        cards += [{"id": f"{alias}@{adapter_name(v.name, into)}", **card, "adapts_into": into}
                  for into in adapters_of(v)]
    for channel, target in sorted(server.pool.channel_targets.items()):
        version, into = parse_adapter_name(target) or (target, None)  # a channel may follow through an adapter
        if version in by_version:
            cards.append({"id": f"{alias}@{channel}", **by_version[version], **({"adapts_into": into} if into else {})})
    return JSONResponse({"object": "list", "data": cards})
