"""The HTTP routes in-process on the tiny model (the real server is in test_server.py)."""

import asyncio
import base64
import threading

import httpx
import numpy as np
import pytest

from embedloop.core.querylog import QueryLogStore, samples_table
from embedloop.core.registry import PRODUCTION
from embedloop.core.versions import register_version
from embedloop.service import metrics
from embedloop.service.app import VERSION_HEADER, create_app
from embedloop.service.engine import Engine
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def counter(metric, **labels) -> float:
    return metric.labels(**labels)._value.get() if labels else metric._value.get()


@pytest.fixture
async def served(tiny_home):
    """(client, engine) for a fresh copy of the tiny state folder; settings via request.param."""
    engines = []

    async def start(**overrides):
        overrides.setdefault("querylog", {"sample_rate": 1.0, "flush_interval_s": 0.05})
        engine = Engine(make_settings(tiny_home, **overrides))
        await engine.start()
        engines.append(engine)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(engine)), base_url="http://t")
        return client, engine

    yield start
    for engine in engines:
        await engine.stop()


async def embed(client, **body):
    body.setdefault("model", "embedloop")
    return await client.post("/v1/embeddings", json=body)


async def test_float_and_base64_encodings_agree(served):
    client, _ = await served()
    floats = await embed(client, input=["a cough that will not go away", "fever"])
    assert floats.status_code == 200
    assert floats.headers[VERSION_HEADER] == "v1"
    body = floats.json()
    assert body["model"] == "embedloop@v1" and body["object"] == "list"
    assert [d["index"] for d in body["data"]] == [0, 1]
    vectors = np.array([d["embedding"] for d in body["data"]])
    assert vectors.shape == (2, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert body["usage"]["prompt_tokens"] > 4
    b64 = (await embed(client, input=["a cough that will not go away", "fever"], encoding_format="base64")).json()
    decoded = np.array([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in b64["data"]])
    assert np.allclose(decoded, vectors, atol=1e-6)


async def test_single_string_and_dimensions(served):
    client, _ = await served()
    full = np.array((await embed(client, input="headache")).json()["data"][0]["embedding"])
    short = np.array((await embed(client, input="headache", dimensions=8)).json()["data"][0]["embedding"])
    assert short.shape == (8,)
    assert np.isclose(np.linalg.norm(short), 1.0, atol=1e-5)
    assert np.allclose(short, full[:8] / np.linalg.norm(full[:8]), atol=1e-5)


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"input": [], "model": "embedloop"}, 400, "empty_input", "input"),
        ({"input": "", "model": "embedloop"}, 400, "empty_input", "input"),
        ({"input": ["ok", "  "], "model": "embedloop"}, 400, "empty_input", "input"),
        ({"input": ["ok", 3], "model": "embedloop"}, 400, "invalid_value", "input"),
        ({"input": [[1, 2, 3]], "model": "embedloop"}, 400, "invalid_value", "input"),
        ({"input": ["x"] * 11, "model": "embedloop"}, 400, "too_many_inputs", "input"),
        ({"input": "x"}, 400, "invalid_value", "model"),
        ({"input": "x", "model": "embedloop", "dimensions": 0}, 400, "invalid_value", "dimensions"),
        ({"input": "x", "model": "embedloop", "dimensions": 33}, 400, "invalid_value", "dimensions"),
        ({"input": "x", "model": "embedloop", "dimensions": "8"}, 400, "invalid_value", "dimensions"),
        ({"input": "x", "model": "embedloop", "encoding_format": "int8"}, 400, "invalid_value", "encoding_format"),
        ({"input": "x", "model": "gpt-4"}, 404, "model_not_found", "model"),
        ({"input": "x", "model": "embedloop@v9"}, 404, "model_not_found", "model"),
        ({"input": "word " * 100, "model": "embedloop", "truncate": False}, 400, "input_too_long", "input"),
    ],
)
async def test_bad_input_gets_an_openai_style_4xx(served, body, status, code, param):
    client, _ = await served(serving={"max_inputs": 10})
    response = await client.post("/v1/embeddings", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["param"] == param
    assert error["type"] and error["message"] and "Traceback" not in response.text


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [(b"{not json", 400, "invalid_json"), (b"[1, 2]", 400, "invalid_json"), (b"x" * 5000, 413, "request_too_large")],
)
async def test_malformed_and_oversized_bodies(served, content, status, code):
    client, _ = await served(serving={"max_body_bytes": 4096})
    response = await client.post("/v1/embeddings", content=content, headers={"content-type": "application/json"})
    assert response.status_code == status and response.json()["error"]["code"] == code


async def test_wrong_method_is_an_openai_style_405(served):
    client, _ = await served()
    response = await client.get("/v1/embeddings")
    assert response.status_code == 405 and response.json()["error"]["code"] == "http_405"


async def test_long_inputs_are_truncated_and_counted(served):
    client, _ = await served()
    before = counter(metrics.TRUNCATIONS, version="v1")
    response = await embed(client, input=["word " * 100, "short"])
    assert response.status_code == 200
    assert response.json()["usage"]["prompt_tokens"] <= 32 + 3
    assert counter(metrics.TRUNCATIONS, version="v1") == before + 1


async def test_full_queue_answers_429_with_retry_after(served):
    client, engine = await served(serving={"max_queue_texts": 4, "max_batch_items": 2, "max_wait_ms": 0})
    gate = threading.Event()
    engine.executor.submit(gate.wait, 10)  # occupy the inference thread
    waiting = asyncio.ensure_future(embed(client, input=["a", "b", "c", "d", "e"]))  # 2 taken, 3 wait
    await asyncio.sleep(0.1)
    refused = await embed(client, input=["d", "e", "f"])
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["type"] == "rate_limit_error"
    gate.set()
    assert (await waiting).status_code == 200


async def test_request_past_its_deadline_gets_504(served):
    client, engine = await served(serving={"request_timeout_s": 0.2})
    gate = threading.Event()
    engine.executor.submit(gate.wait, 10)
    response = await embed(client, input="late")
    gate.set()
    assert response.status_code == 504 and response.json()["error"]["code"] == "deadline_exceeded"


async def test_requests_and_sampled_texts_reach_the_query_log(served, tiny_home):
    client, engine = await served()
    for text in ("sore throat", "back pain"):
        assert (await embed(client, input=text)).status_code == 200
    assert (await embed(client, input="")).status_code == 400  # failures are logged too, without text
    await engine.stop()
    store = QueryLogStore(engine.settings.querylog_url)
    assert store.count() == 2  # the 400 was refused before a model was chosen: nothing to attribute
    rows = store.sample_rows(version="v1")
    assert sorted(r.text for r in rows) == ["back pain", "sore throat"]
    assert all(r.embedding.shape == (32,) for r in rows)
    assert store.count(samples_table) == 2


async def test_models_list_and_pinned_versions_after_a_hot_swap(served, tiny_home, tiny_base):
    client, engine = await served()
    v2 = register_version(engine.settings, engine.registry, tiny_base)
    engine.registry.move_alias(PRODUCTION, v2.name)
    assert await engine.pool.refresh()
    assert (await embed(client, input="x")).headers[VERSION_HEADER] == "v2"
    pinned = await embed(client, input="x", model="embedloop@v1")
    assert pinned.status_code == 200 and pinned.json()["model"] == "embedloop@v1"
    ids = [m["id"] for m in (await client.get("/v1/models")).json()["data"]]
    assert ids == ["embedloop", "embedloop@v1", "embedloop@v2"]


async def test_tampered_version_is_refused_and_production_stays(served, tiny_base):
    client, engine = await served()
    v2 = register_version(engine.settings, engine.registry, tiny_base)
    graph = engine.settings.models_dir / v2.artifact_dir / v2.manifest["graphs"]["int8"]
    graph.write_bytes(graph.read_bytes()[:-10] + b"0123456789")
    engine.registry.move_alias(PRODUCTION, v2.name)
    assert not await engine.pool.refresh()
    response = await embed(client, input="x")
    assert response.status_code == 200 and response.headers[VERSION_HEADER] == "v1"
    pinned = await embed(client, input="x", model="embedloop@v2")
    assert pinned.status_code == 503 and "sha256" in pinned.json()["error"]["message"]
