"""The HTTP routes in-process on the tiny model (the real server is in test_server.py)."""

import asyncio
import base64
import threading

import httpx
import numpy as np
import pytest

from embedloop.core.models.registry import PRODUCTION
from embedloop.core.models.versions import register_version
from embedloop.service import metrics
from embedloop.service.app import create_app
from embedloop.service.observe import VERSION_HEADER
from embedloop.service.server import Server
from tests.conftest import make_state

pytestmark = pytest.mark.anyio


def counter(metric, **labels) -> float:
    return metric.labels(**labels)._value.get() if labels else metric._value.get()


@pytest.fixture
async def served(tiny_home):
    """``start(**settings)`` -> (client, server) for a fresh copy of the tiny state folder."""
    servers = []

    async def start(**overrides):
        overrides.setdefault("querylog", {"sample_rate": 1.0, "flush_interval_s": 0.05})
        server = Server(make_state(tiny_home, **overrides))
        await server.start()
        servers.append(server)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(server)), base_url="http://t")
        return client, server

    yield start
    for server in servers:
        if not server.draining:
            await server.stop()
        server.state.close()


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
    client, server = await served(serving={"max_queue_texts": 4, "max_batch_items": 2, "max_wait_ms": 0,
                                           "batches_in_flight": 1})
    gate = threading.Event()
    server.executor.submit(gate.wait, 10)  # occupy the inference thread
    waiting = asyncio.ensure_future(embed(client, input=["a", "b", "c", "d", "e"]))  # 2 taken, 3 wait
    await asyncio.sleep(0.1)
    refused = await embed(client, input=["d", "e", "f"])
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["type"] == "rate_limit_error"
    unread = await client.post("/v1/embeddings", content=b"{not json")  # no room: refused before reading it
    assert unread.status_code == 429
    gate.set()
    assert (await waiting).status_code == 200


async def test_request_past_its_deadline_gets_504(served):
    client, server = await served(serving={"request_timeout_s": 0.2, "batches_in_flight": 1})
    gate = threading.Event()
    server.executor.submit(gate.wait, 10)
    response = await embed(client, input="late")
    gate.set()
    assert response.status_code == 504 and response.json()["error"]["code"] == "deadline_exceeded"


async def test_requests_and_sampled_texts_reach_the_query_log(served):
    client, server = await served(serving={"max_inputs": 2})
    for text in ("sore throat", "back pain"):
        assert (await embed(client, input=text)).status_code == 200
    assert (await embed(client, input="")).status_code == 400  # refused before a model was chosen: not logged
    assert (await embed(client, input="x", dimensions=99)).status_code == 400  # after: logged, without text
    await server.stop()
    store = server.state.querylog
    assert store.count_requests() == 3
    rows = store.sample_rows(version="v1")
    assert sorted(r.text for r in rows) == ["back pain", "sore throat"]
    assert all(r.embedding.shape == (32,) for r in rows)
    assert store.count_samples() == 2


async def test_every_request_is_counted_by_endpoint_and_status(served):
    client, _ = await served()
    before = {s: counter(metrics.REQUESTS, endpoint="embeddings", status=s) for s in ("200", "404")}
    models_before = counter(metrics.REQUESTS, endpoint="models", status="200")
    await embed(client, input="x")
    missing = await embed(client, input="x", model="embedloop@v9")
    assert missing.status_code == 404 and VERSION_HEADER not in missing.headers
    await client.get("/v1/models")
    assert counter(metrics.REQUESTS, endpoint="embeddings", status="200") == before["200"] + 1
    assert counter(metrics.REQUESTS, endpoint="embeddings", status="404") == before["404"] + 1
    assert counter(metrics.REQUESTS, endpoint="models", status="200") == models_before + 1


async def test_models_list_and_pinned_versions_after_a_hot_swap(served, tiny_base):
    client, server = await served()
    v2 = register_version(server.settings, server.state.registry, tiny_base)
    server.state.registry.move_alias(PRODUCTION, v2.name)
    assert await server.pool.refresh()
    assert (await embed(client, input="x")).headers[VERSION_HEADER] == "v2"
    pinned = await embed(client, input="x", model="embedloop@v1")
    assert pinned.status_code == 200 and pinned.json()["model"] == "embedloop@v1"
    ids = [m["id"] for m in (await client.get("/v1/models")).json()["data"]]
    assert ids == ["embedloop", "embedloop@v1", "embedloop@v2"]


async def test_tampered_version_is_refused_and_production_stays(served, tiny_base):
    client, server = await served()
    v2 = register_version(server.settings, server.state.registry, tiny_base)
    graph = server.settings.models_dir / v2.artifact_dir / v2.manifest["graphs"]["int8"]
    graph.write_bytes(graph.read_bytes()[:-10] + b"0123456789")
    server.state.registry.move_alias(PRODUCTION, v2.name)
    assert not await server.pool.refresh()
    response = await embed(client, input="x")
    assert response.status_code == 200 and response.headers[VERSION_HEADER] == "v1"
    pinned = await embed(client, input="x", model="embedloop@v2")
    assert pinned.status_code == 503 and "sha256" in pinned.json()["error"]["message"]


async def test_token_id_arrays_are_refused_with_the_langchain_flag_named(served):
    client, _ = await served()
    response = await embed(client, input=[[101, 2054, 102]])
    error = response.json()["error"]
    assert response.status_code == 400 and error["param"] == "input"
    assert "check_embedding_ctx_length=False" in error["message"]


def register_with_adapter(server, base, into: str):
    """A second version registered with a query adapter into ``into``'s space: a seeded random rotation."""
    from scipy.stats import ortho_group

    from embedloop.core.models.adapters import adapter_file
    from embedloop.core.models.versions import Assessment

    rotation = ortho_group.rvs(server.state.registry.get(into).manifest["dimensions"], random_state=0)

    def assess(folder, manifest):
        np.save(folder / adapter_file(into), rotation.astype(np.float32))
        return Assessment()

    return register_version(server.settings, server.state.registry, base, assess=assess), rotation


async def test_a_query_adapter_serves_the_versions_vectors_rotated_into_the_older_space(served, tiny_base):
    client, server = await served()
    v2, rotation = register_with_adapter(server, tiny_base, "v1")
    texts = ["heart attack symptoms", "how is glaucoma treated"]
    own = await embed(client, input=texts, model="embedloop@v2")
    adapted = await embed(client, input=texts, model="embedloop@v2~v1")
    assert adapted.status_code == 200 and adapted.json()["model"] == "embedloop@v2~v1"
    assert adapted.headers[VERSION_HEADER] == "v2"  # the version that ran, for metrics and the query log
    mine = np.array([d["embedding"] for d in own.json()["data"]])
    theirs = np.array([d["embedding"] for d in adapted.json()["data"]])
    assert np.abs(theirs - mine @ rotation).max() < 1e-5
    assert np.abs(theirs @ theirs.T - mine @ mine.T).max() < 1e-5  # a rotation: v2's own rankings are kept
    short = await embed(client, input=texts[0], model="embedloop@v2~v1", dimensions=8)
    vector = np.array(short.json()["data"][0]["embedding"])
    assert vector.shape == (8,) and abs(np.linalg.norm(vector) - 1) < 1e-5
    cards = {m["id"]: m for m in (await client.get("/v1/models")).json()["data"]}
    assert cards["embedloop@v2~v1"]["version"] == "v2" and cards["embedloop@v2~v1"]["adapts_into"] == "v1"
    for missing in ("embedloop@v1~v2", "embedloop@v9~v1"):  # no such adapter; no such version
        refused = await embed(client, input="x", model=missing)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "model_not_found", missing


async def test_a_tampered_query_adapter_is_refused(served, tiny_base):
    client, server = await served()
    v2, _ = register_with_adapter(server, tiny_base, "v1")
    path = server.settings.models_dir / v2.artifact_dir / "adapter-v1.npy"
    np.save(path, np.eye(v2.manifest["dimensions"], dtype=np.float32))
    refused = await embed(client, input="x", model="embedloop@v2~v1")
    assert refused.status_code == 503 and "sha256" in refused.json()["error"]["message"]
    assert (await embed(client, input="x", model="embedloop@v2")).status_code == 200
