"""The real service: BentoML over HTTP, the real model, the OpenAI client, promtool, a hot swap."""

from __future__ import annotations

import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from embedloop.core.models.promotion import ensure_production
from embedloop.core.models.registry import PRODUCTION
from embedloop.core.models.versions import load_encoder, register_version
from tests.conftest import make_state
from tests.servers import start_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def real_home(tmp_path_factory, real_base):
    home = tmp_path_factory.mktemp("real-home")
    with make_state(home) as state:
        ensure_production(state.registry, register_version(state.settings, state.registry, real_base).name)
    return home


@pytest.fixture(scope="module")
def server(real_home, tmp_path_factory):
    srv = start_server(real_home, tmp_path_factory.mktemp("logs") / "server.log",
                       env={"EMBEDLOOP_SERVING__ALIAS_POLL_S": "0.5"})
    yield srv
    srv.stop()


def test_openai_client_float_and_base64(server, real_home):
    from openai import OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    texts = ["What are the symptoms of glaucoma?", "How is asthma treated?"]
    as_float = client.embeddings.create(model="embedloop", input=texts, encoding_format="float")
    as_default = client.embeddings.create(model="embedloop", input=texts)  # the client asks for base64
    assert as_float.model == "embedloop@v1" and as_float.usage.prompt_tokens > 10
    a = np.array([d.embedding for d in as_float.data])
    b = np.array([d.embedding for d in as_default.data])
    assert a.shape == (2, 384) and np.allclose(a, b, atol=1e-6)
    with make_state(real_home) as state:
        local = load_encoder(state.settings, state.registry.get("v1")).encode(texts)
    assert np.allclose(a, local, atol=1e-4)  # the server serves exactly the registered int8 graph
    short = client.embeddings.create(model="embedloop@v1", input="glaucoma", dimensions=64)
    assert len(short.data[0].embedding) == 64


def test_a_text_gets_the_same_vector_whatever_shares_its_batch(server):
    """Alone, next to other texts in one request, and next to other clients' requests in one pass."""
    target = "heart attack symptoms"
    companions = [["how is diabetes treated"], ["a"], [" ".join(["a long question about a rare disease"] * 30)],
                  [f"question number {i} about treatment options" for i in range(40)]]

    def vector_of(inputs: list[str]) -> np.ndarray:
        body = httpx.post(f"{server.url}/v1/embeddings", json={"model": "embedloop", "input": inputs}, timeout=60)
        assert body.status_code == 200
        return np.array(body.json()["data"][inputs.index(target)]["embedding"])

    alone = vector_of([target])
    for others in companions:
        assert np.abs(vector_of(others + [target]) - alone).max() <= 1e-5
    # many clients at once: the batcher puts their texts into shared passes
    requests = [[target]] * 8 + [others for others in companions for _ in range(4)]
    with ThreadPoolExecutor(16) as pool:
        vectors = list(pool.map(lambda inputs: vector_of(inputs) if target in inputs else None, requests))
    assert max(np.abs(v - alone).max() for v in vectors if v is not None) <= 1e-5


def test_openai_client_sees_errors_as_exceptions(server):
    import openai

    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="embedloop@v99", input="x")
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="embedloop", input="x", dimensions=1000)
    assert info.value.body["code"] == "invalid_value"


def test_bad_requests_over_real_http(server):
    with httpx.Client(base_url=server.url) as http:
        malformed = http.post("/v1/embeddings", content=b"{", headers={"content-type": "application/json"})
        assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "invalid_json"
        huge = http.post("/v1/embeddings", content=b"x" * (5 * 1024 * 1024))
        assert huge.status_code == 413
        version = http.post("/v1/embeddings", json={"input": "x", "model": "embedloop"}).headers["x-embedloop-version"]
        assert version == "v1"
        models = http.get("/v1/models").json()["data"]
        assert models[0]["id"] == "embedloop" and models[0]["dimensions"] == 384


def test_metrics_pass_promtool(server, tmp_path):
    httpx.post(f"{server.url}/v1/embeddings", json={"input": ["word " * 400], "model": "embedloop"})
    text = httpx.get(f"{server.url}/metrics").text
    for name in ("embedloop_requests_total", "embedloop_texts_total", "embedloop_tokens_total",
                 "embedloop_truncated_texts_total", "embedloop_batch_size_texts_bucket",
                 "embedloop_queue_depth_texts", "embedloop_querylog_writes_total", "embedloop_querylog_drops_total",
                 'embedloop_model_info{provider="CPUExecutionProvider",role="production",version="v1"} 1.0',
                 "bentoml_service_request_duration_seconds"):
        assert name in text, name
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    problems = [line for line in (check.stdout + check.stderr).splitlines() if line.startswith("embedloop_")]
    assert problems == [], problems


def test_hot_swap_under_concurrent_traffic(server, real_home, real_base, open_states):
    state = open_states(real_home)
    registry = state.registry
    v2 = register_version(state.settings, registry, real_base)
    results: list[tuple[float, int, str]] = []
    stop = threading.Event()

    def stream(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            n = 0
            while not stop.is_set():
                n += 1
                r = http.post("/v1/embeddings", json={"input": [f"query {worker} {n}", "chest pain"],
                                                      "model": "embedloop"})
                results.append((time.monotonic(), r.status_code, r.headers.get("x-embedloop-version", "")))

    with ThreadPoolExecutor(8) as pool:
        for i in range(8):
            pool.submit(stream, i)
        time.sleep(2)
        swapped_at = time.monotonic()
        registry.move_alias(PRODUCTION, v2.name, reason="hot-swap test")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            recent = [v for t, _, v in results[-16:]]
            if len(recent) == 16 and all(v == v2.name for v in recent):
                break
            time.sleep(0.2)
        time.sleep(1)
        stop.set()
    statuses = {s for _, s, _ in results}
    assert statuses == {200}, f"non-200 during swap: {statuses}"
    versions_before = {v for t, _, v in results if t < swapped_at}
    assert versions_before == {"v1"}
    assert results[-1][2] == v2.name and len(results) > 50
    pinned = httpx.post(f"{server.url}/v1/embeddings", json={"input": "x", "model": "embedloop@v1"})
    assert pinned.status_code == 200 and pinned.json()["model"] == "embedloop@v1"


def texts_computed(server) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    return float(next(line.split()[-1] for line in text.splitlines()
                      if line.startswith("embedloop_batch_size_texts_sum")))


def test_abandoned_requests_are_not_computed(server):
    long_texts = [f"question {i} " + "about the symptoms, causes and treatment of a rare disease " * 25
                  for i in range(512)]
    before = texts_computed(server)
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"{server.url}/v1/embeddings", json={"input": long_texts, "model": "embedloop"}, timeout=0.5)
    response = httpx.post(f"{server.url}/v1/embeddings", json={"input": "quick", "model": "embedloop"}, timeout=60)
    time.sleep(1.0)
    # Only the batch already running when the client left is finished; the rest is skipped.
    assert response.status_code == 200 and texts_computed(server) - before < 512 / 2


def test_a_flood_of_large_requests_is_refused_quickly_while_a_steady_client_is_served(server):
    """Sixteen clients send 64 texts per request as fast as they are answered (several seconds of
    work offered at any time, each request about a quarter of a second of the whole machine's);
    one client sends a question every 0.2 s. The queue's wait limit turns most of the flood away
    at once, and the steady client's questions fit in the room a large request cannot use."""
    flood_body = {"model": "embedloop", "encoding_format": "base64",
                  "input": [f"flood question {i} about the causes and treatment of a chronic disease"
                            for i in range(64)]}
    seconds, flood_outcomes, steady_outcomes = 8.0, [], []
    end = time.monotonic() + seconds

    def timed_post(client: httpx.Client, body: dict) -> tuple[int, float]:
        started = time.monotonic()
        status = client.post(f"{server.url}/v1/embeddings", json=body).status_code
        return status, time.monotonic() - started

    def flood() -> None:
        with httpx.Client(timeout=60) as client:
            while time.monotonic() < end:
                flood_outcomes.append(timed_post(client, flood_body))

    def steady(i: int) -> tuple[int, float]:
        with httpx.Client(timeout=60) as client:
            return timed_post(client, {"model": "embedloop", "input": f"steady question {i} about asthma"})

    with ThreadPoolExecutor(16) as flooders, ThreadPoolExecutor(16) as steady_pool:
        for _ in range(16):
            flooders.submit(flood)
        time.sleep(1.0)  # the queue fills
        futures = []
        for i in range(int((seconds - 1.5) / 0.2)):
            futures.append(steady_pool.submit(steady, i))
            time.sleep(0.2)
        steady_outcomes = [f.result() for f in futures]
    refused = [t for status, t in flood_outcomes if status == 429]
    served = [t for status, t in flood_outcomes if status == 200]
    assert {status for status, _ in flood_outcomes} <= {200, 429}
    assert len(refused) >= 10 and len(served) > 0
    assert np.median(refused) < 0.1 and np.median(refused) < np.median(served) / 5
    steady_ok = [t for status, t in steady_outcomes if status == 200]
    assert len(steady_ok) >= 0.9 * len(steady_outcomes), steady_outcomes


def test_shutdown_drains_in_flight_requests(server):
    """Last in this module: it stops the server."""
    big = {"input": [f"long question number {i} " + "about symptoms and treatment " * 30 for i in range(128)],
           "model": "embedloop"}
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(httpx.post, f"{server.url}/v1/embeddings", json=big, timeout=120)
        time.sleep(0.5)
        assert not future.done()
        returncode = server.stop()
        response = future.result()
    assert response.status_code == 200 and len(response.json()["data"]) == 128
    assert returncode is not None


def test_two_worker_processes_share_one_state_folder(tiny_home, tmp_path):
    srv = start_server(tiny_home, tmp_path / "two-workers.log",
                       env={"EMBEDLOOP_SERVING__WORKERS": "2", "EMBEDLOOP_SERVING__INTRA_OP_THREADS": "1",
                            "EMBEDLOOP_QUERYLOG__FLUSH_INTERVAL_S": "0.1"})
    try:
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda i: httpx.post(f"{srv.url}/v1/embeddings", timeout=30,
                                                           json={"input": [f"text {i}"], "model": "embedloop"}),
                                      range(64)))
        assert {r.status_code for r in responses} == {200}
        import psutil

        def is_worker(proc) -> bool:
            try:
                return "_bentoml_impl.worker.service" in " ".join(proc.cmdline())
            except psutil.Error:  # short-lived helpers that already exited
                return False

        assert sum(map(is_worker, psutil.Process(srv.process.pid).children(recursive=True))) == 2
        metrics_text = httpx.get(f"{srv.url}/metrics").text
        assert 'embedloop_requests_total{endpoint="embeddings",status="200"} 64.0' in metrics_text  # summed
    finally:
        srv.stop()
    with make_state(tiny_home) as state:
        assert state.querylog.count_requests() == 64  # both writers, one SQLite file
