"""/v1/feedback and the admin API, in-process on the tiny model."""

import httpx
import pytest

from embedloop.core.models.registry import PRODUCTION
from embedloop.core.models.versions import register_version
from embedloop.service.app import create_app
from embedloop.service.server import Server
from tests.conftest import make_state

pytestmark = pytest.mark.anyio
TOKEN = "s3cret-token"


@pytest.fixture
async def serve(tiny_home):
    """``serve(**settings)`` -> an HTTP client of a started server, and the server."""
    servers = []

    async def start(**overrides):
        server = Server(make_state(tiny_home, **overrides))
        server.state.corpus.add({"d1": "Glaucoma damages the optic nerve.", "d2": "Asthma narrows the airways."})
        await server.start()
        servers.append(server)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(server)), base_url="http://t"), server

    yield start
    for server in servers:
        await server.stop()
        server.state.close()


@pytest.fixture
async def client(serve):
    http, server = await serve(admin={"token": TOKEN}, probes={"feedback_fraction": 0.0})
    async with http:
        yield http, server.state


async def test_feedback_single_and_batch_is_stored(client):
    http, state = client
    one = await http.post("/v1/feedback", json={"query": "What is glaucoma?", "positive_id": "d1"})
    assert one.status_code == 200 and one.json()["accepted"] == 1
    batch = await http.post("/v1/feedback", json=[
        {"query": "What is glaucoma?", "positive_id": "d1"},
        {"query": "Asthma treatment?", "positive_text": "Inhalers help.", "negative_ids": ["d1"], "group": "lungs"}])
    assert batch.json() == {"object": "feedback.result", "accepted": 1, "to_probes": 0, "duplicates": 1}
    pairs = state.feedback.pairs()
    assert [(p.query, p.positive, p.negatives) for p in pairs] == [
        ("What is glaucoma?", "Glaucoma damages the optic nerve.", []),
        ("Asthma treatment?", "Inhalers help.", ["Glaucoma damages the optic nerve."])]


@pytest.mark.parametrize("body, param, code", [
    (b"{", None, "invalid_json"),
    (b"[]", None, "empty_input"),
    (b'{"query": "q"}', None, "invalid_value"),
    (b'[{"query": "q", "positive_id": "d1"}, 7]', None, "invalid_value"),
    (b'[{"query": "q", "positive_id": "d1"}, {"query": "", "positive_id": "d1"}]', "[1].query", "invalid_value"),
    (b'[{"query": "q", "positive_id": "d1"}, {"query": "r", "positive_id": "nope"}]', "[1]", "unknown_document"),
])
async def test_bad_feedback_is_a_400_and_writes_nothing(client, body, param, code):
    http, state = client
    response = await http.post("/v1/feedback", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == code
    if param:
        assert response.json()["error"]["param"] == param
    assert state.feedback.count() == 0


async def test_feedback_share_for_probes(serve):
    http, server = await serve(probes={"feedback_fraction": 1.0})
    async with http:
        response = await http.post("/v1/feedback", json={"query": "glaucoma?", "positive_id": "d1", "group": "eyes"})
    assert response.json()["to_probes"] == 1
    assert server.state.probes.load().groups == ["eyes"]


async def test_admin_needs_the_bearer_token(client):
    http, _ = client
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": f"Basic {TOKEN}"}):
        response = await http.get("/admin/models", headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["type"] == "authentication_error"
    ok = await http.get("/admin/models", headers={"authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.json()["data"][0]["aliases"] == ["production"]


async def test_the_admin_token_does_not_close_the_open_routes(client):
    http, _ = client
    ok = await http.post("/v1/feedback", json={"query": "What is glaucoma?", "positive_id": "d1"},
                         headers={"authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200  # no keys yet: /v1 is open whatever credential comes along


async def test_admin_is_off_without_a_token(serve):
    http, _ = await serve()
    async with http:
        response = await http.post("/admin/rollback", headers={"authorization": "Bearer anything"})
    assert response.status_code == 503 and response.json()["error"]["code"] == "admin_disabled"


async def test_approve_reject_rollback_over_the_admin_api(client, tiny_base):
    http, state = client
    auth = {"authorization": f"Bearer {TOKEN}"}
    for _ in range(2):
        register_version(state.settings, state.registry, tiny_base)
    state.promotion.mark_candidate("v2")
    state.promotion.mark_candidate("v3")

    assert (await http.post("/admin/models/v9/approve", headers=auth)).status_code == 404
    assert (await http.post("/admin/models/v1/approve", headers=auth)).status_code == 409  # not a candidate
    bad = await http.post("/admin/models/v2/approve", headers=auth, json={"reason": 5})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "reason"
    approved = await http.post("/admin/models/v2/approve", headers=auth, json={"reason": "better", "actor": "ana"})
    assert approved.json() == {"alias": PRODUCTION, "from": "v1", "to": "v2"}
    rejected = await http.post("/admin/models/v3/reject", headers=auth, json={"reason": "worse on GARD"})
    assert rejected.json()["state"] == "rejected"
    back = await http.post("/admin/rollback", headers=auth, json={"reason": "complaints"})
    assert back.json() == {"alias": PRODUCTION, "from": "v2", "to": "v1"}
    history = (await http.get("/admin/history?limit=3", headers=auth)).json()["data"]
    assert [(e["action"], e["actor"], e["from"], e["to"]) for e in history] == [
        ("rollback", "key:admin-token", "v2", "v1"), ("reject", "key:admin-token", None, "v3"),
        ("approve", "ana (key:admin-token)", "v1", "v2")]
    assert (await http.get("/admin/history?limit=x", headers=auth)).status_code == 400
