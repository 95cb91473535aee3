"""The typed client against a real server (BentoML, the tiny model, a waiting candidate)."""

from __future__ import annotations

import httpx
import pytest

from embedloop.client import Client, ClientError
from embedloop.core.access.keys import Scope
from embedloop.core.labels.feedback import FeedbackItem
from tests.conftest import copy_home, make_state
from tests.servers import start_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(reviewable, tmp_path_factory):
    """A server, an admin key and a feedback-only key."""
    folder = tmp_path_factory.mktemp("client")
    home = copy_home(reviewable, folder)
    with make_state(home) as state:
        _, admin = state.keys.create("ops", frozenset({Scope.ADMIN}))
        _, teacher = state.keys.create("teacher", frozenset({Scope.FEEDBACK}))
        document = state.corpus.all()[0][0]
    server = start_server(home, folder / "server.log")
    yield server, admin, teacher, document
    server.stop()


def test_versions_and_their_gate_figures(served):
    server, admin, _, _ = served
    with Client(server.url, admin) as client:
        versions = {v.version: v for v in client.versions()}
        assert versions["v1"].aliases == ["production"] and versions["v2"].state == "candidate"
        candidate = client.version("v2")
        assert candidate.parent == "v1" and candidate.metrics["gates"]["passed"] is True
        with pytest.raises(ClientError) as missing:
            client.version("v99")
        assert missing.value.status == 404


def test_feedback_is_stored_once_and_bad_feedback_is_refused_with_the_services_reason(served):
    server, _, teacher, document = served
    with Client(server.url, teacher) as client:
        item = FeedbackItem(query="what does the client send?", positive_id=document)
        first = client.feedback(item)
        assert (first.accepted, first.duplicates) == (1, 0)
        again = client.feedback([item, FeedbackItem(query="and a second one?", positive_id=document)])
        assert (again.accepted, again.duplicates) == (1, 1)
        with pytest.raises(ClientError) as unknown:
            client.feedback(FeedbackItem(query="q", positive_id="no-such-document"))
        assert (unknown.value.status, unknown.value.code, unknown.value.param) == (400, "unknown_document", "[0]")
        with pytest.raises(ClientError) as scope:
            client.versions()  # a feedback key is no admin
        assert (scope.value.status, scope.value.code) == (403, "forbidden")
    with Client(server.url) as anonymous, pytest.raises(ClientError) as none:
        anonymous.history()
    assert none.value.status == 401


def test_approve_roll_back_reject_and_the_audit_log(served):
    server, admin, _, _ = served
    with Client(server.url, admin) as client:
        moved = client.approve("v2", "gains on every group", actor="ana")
        assert (moved.alias, moved.from_, moved.to) == ("production", "v1", "v2")
        back = client.rollback("rehearsal")
        assert (back.from_, back.to) == ("v2", "v1")
        with pytest.raises(ClientError) as refused:
            client.reject("v1", "v1 is no candidate")
        assert (refused.value.status, refused.value.code) == (409, "conflict")
        entries = client.history(limit=3)
        assert [e.action for e in entries[:2]] == ["rollback", "approve"]
        assert entries[1].actor == "ana (key:ops)" and entries[1].reason == "gains on every group"


def test_keys_created_and_revoked(served):
    server, admin, _, _ = served
    with Client(server.url, admin) as client:
        created = client.create_key("reader", ["embed"], reason="a new app")
        assert created.secret.startswith("el_") and created.scopes == ["embed"]
        embed = {"input": "hello", "model": "embedloop"}  # one server process: the key works at once
        headers = {"Authorization": f"Bearer {created.secret}"}
        assert httpx.post(f"{server.url}/v1/embeddings", json=embed, headers=headers).status_code == 200
        revoked = client.revoke_key("reader", reason="app retired")
        assert revoked.revoked_at is not None
        assert httpx.post(f"{server.url}/v1/embeddings", json=embed, headers=headers).status_code == 401
        assert [k.name for k in client.keys() if k.revoked_at] == ["reader"]
        with pytest.raises(ClientError) as taken:
            client.create_key("ops", ["admin"])
        assert taken.value.status == 409


def test_a_channel_is_created_followed_and_moved_after_a_reindex(served):
    server, admin, _, _ = served

    with Client(server.url, admin) as client:
        app_key = client.create_key("channel-app", ["embed"]).secret

        def served_by(model: str) -> str:
            response = httpx.post(f"{server.url}/v1/embeddings", json={"input": "glaucoma", "model": model},
                                  headers={"Authorization": f"Bearer {app_key}"})
            return response.json()["model"]

        production = next(v.version for v in client.versions() if "production" in v.aliases)
        channel = client.create_channel("index-main", reason="search index")
        assert (channel.serves, channel.built_with, channel.lagging, channel.adapt) == (production, production, False,
                                                                                       False)
        assert client.create_channel("index-adapt", adapt=True).adapt is True
        assert served_by("embedloop@index-main") == f"embedloop@{production}"
        other = "v2" if production == "v1" else "v1"
        moved = client.channel_reindexed("index-main", other, reason="rebuilt the index")
        assert (moved.serves, moved.built_with, moved.lagging) == (other, other, True)
        assert served_by("embedloop@index-main") == f"embedloop@{other}"
        assert [c.name for c in client.channels()] == ["index-adapt", "index-main"]
        with pytest.raises(ClientError) as missing:
            client.channel_reindexed("index-nope", other)
        assert (missing.value.status, missing.value.code) == (404, "channel_not_found")
        assert client.history(1)[0].action == "channel_reindexed"


def test_the_candidates_query_adapter_is_served_over_http_exactly_when_its_gates_registered_it(served):
    import numpy as np

    server, admin, _, _ = served
    with Client(server.url, admin) as client:
        adapter = client.version("v2").metrics["gates"]["compatibility"]["adapter"]
        key = client.create_key("adapter-app", ["embed"]).secret

    def embed(model: str) -> httpx.Response:
        return httpx.post(f"{server.url}/v1/embeddings", json={"input": ["glaucoma", "heart attack"], "model": model},
                          headers={"Authorization": f"Bearer {key}"})

    adapted, plain = embed("embedloop@v2~v1"), embed("embedloop@v2")
    ids = [m["id"] for m in httpx.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {key}"})
           .json()["data"]]
    if not adapter["served"]:
        assert adapted.status_code == 404 and "embedloop@v2~v1" not in ids
        return
    assert adapted.status_code == 200 and adapted.json()["model"] == "embedloop@v2~v1" and "embedloop@v2~v1" in ids
    mine, theirs = (np.array([d["embedding"] for d in r.json()["data"]]) for r in (plain, adapted))
    assert np.abs(theirs @ theirs.T - mine @ mine.T).max() < 1e-5 and np.abs(theirs - mine).max() > 0.01
