"""API keys, scopes, revocation, quotas and purge against a real server (BentoML over HTTP, tiny
model); keys are made with the command line while the server runs, as an operator would."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from embedloop.app.cli.main import app as cli
from tests.conftest import copy_home, make_state
from tests.servers import start_server

pytestmark = pytest.mark.integration
REFRESH_S = 0.3


@pytest.fixture(scope="module")
def home(tmp_path_factory, tiny_registered):
    return copy_home(tiny_registered, tmp_path_factory.mktemp("access"),
                     {"d1": "Glaucoma damages the optic nerve.", "d2": "Asthma narrows the airways."})


@pytest.fixture(scope="module")
def server(home, tmp_path_factory):
    srv = start_server(home, tmp_path_factory.mktemp("logs") / "server.log",
                       env={"EMBEDLOOP_ACCESS__REFRESH_S": str(REFRESH_S), "EMBEDLOOP_PROBES__FEEDBACK_FRACTION": "0"})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def keys(home, server):
    """Secrets by name, created once the open-mode test has run."""
    return {}


def embedloop(home, *args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--home", str(home)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def create(home, keys, name: str, scopes: str, *quotas: str) -> str:
    out = embedloop(home, "keys", "create", "--name", name, "--scopes", scopes,
                    *[a for q in quotas for a in ("--quota", q)])
    keys[name] = out.strip().splitlines()[-1]
    return keys[name]


def call(server, method: str, path: str, secret: str | None = None, **kwargs) -> httpx.Response:
    headers = {"authorization": f"Bearer {secret}"} if secret else {}
    return httpx.request(method, server.url + path, headers=headers, timeout=30, **kwargs)


def embed(server, secret=None, n: int = 1) -> httpx.Response:
    return call(server, "POST", "/v1/embeddings", secret, json={"model": "embedloop", "input": ["eye pressure"] * n})


def feedback(server, secret=None, n: int = 1, start: int = 0) -> httpx.Response:
    return call(server, "POST", "/v1/feedback", secret,
                json=[{"query": f"question {start + i}", "positive_id": "d1"} for i in range(n)])


def until(check, timeout: float = 10 * REFRESH_S + 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not in effect in time"
        time.sleep(0.1)


def test_open_until_the_first_key_exists(server):
    assert embed(server).status_code == 200
    assert embed(server, "sk-anything").status_code == 200  # OpenAI clients always send some key
    assert feedback(server, start=1000).status_code == 200
    admin = call(server, "GET", "/admin/models")
    assert admin.status_code == 503 and admin.json()["error"]["code"] == "admin_disabled"
    assert "no API keys yet" in server.log.read_text()


def test_every_route_needs_a_key_with_its_scope(home, server, keys):
    create(home, keys, "search", "embed")
    create(home, keys, "teacher", "feedback")
    create(home, keys, "ops", "admin")
    until(lambda: embed(server).status_code == 401)
    # The service re-reads keys every refresh: the first key can be known before the last one is.
    until(lambda: embed(server, keys["ops"]).status_code == 403)
    anonymous = embed(server)
    assert anonymous.json()["error"]["type"] == "authentication_error"
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert embed(server, "el_0000_wrong").status_code == 401
    expected = {  # (route, key) -> status
        ("embed", "search"): 200, ("embed", "teacher"): 403, ("embed", "ops"): 403,
        ("feedback", "search"): 403, ("feedback", "teacher"): 200, ("feedback", "ops"): 403,
        ("admin", "search"): 403, ("admin", "teacher"): 403, ("admin", "ops"): 200,
        ("models", "search"): 200, ("models", "teacher"): 200, ("models", "ops"): 200,
    }
    routes = {"embed": lambda s: embed(server, s), "feedback": lambda s: feedback(server, s, start=2000),
              "admin": lambda s: call(server, "GET", "/admin/models", s),
              "models": lambda s: call(server, "GET", "/v1/models", s)}
    got = {(route, name): routes[route](keys[name]).status_code for route, name in expected}
    assert got == expected
    forbidden = embed(server, keys["teacher"]).json()["error"]
    assert forbidden["type"] == "permission_error" and "'embed' scope" in forbidden["message"]
    for route in routes:
        assert routes[route](None).status_code == 401
    assert keys["search"] not in server.log.read_text()  # secrets are never logged
    time.sleep(1.5)  # the query log writes in the background
    with make_state(home) as state, state.querylog.engine.connect() as conn:
        logged = dict(conn.execute(text("SELECT key_name, count(*) FROM requests GROUP BY key_name")).all())
    assert logged.get("search", 0) >= 1 and logged.get(None, 0) >= 2  # the open-mode requests had no key


def test_revocation_takes_effect_without_a_restart(home, server, keys):
    secret = create(home, keys, "temporary", "embed")
    until(lambda: embed(server, secret).status_code == 200)
    pid = server.process.pid
    assert "revoked temporary" in embedloop(home, "keys", "revoke", "temporary", "--reason", "leaked")
    until(lambda: embed(server, secret).status_code == 401)
    assert server.process.poll() is None and server.process.pid == pid
    assert embed(server, keys["search"]).status_code == 200  # other keys unaffected
    listed = call(server, "GET", "/admin/keys", keys["ops"]).json()["data"]
    revoked = {k["name"]: k["revoked_at"] for k in listed}
    assert revoked["temporary"] is not None and revoked["search"] is None
    assert all("secret" not in k for k in listed)


def test_request_and_text_quotas_refuse_with_retry_after_then_recover(home, server, keys):
    secret = create(home, keys, "limited", "embed", "embed_requests_per_s=2", "embed_texts_per_min=12")
    until(lambda: embed(server, secret).status_code == 200)
    time.sleep(1.1)  # a fresh second
    statuses = [embed(server, secret).status_code for _ in range(4)]
    assert statuses[:2] == [200, 200] and 429 in statuses[2:]
    refused = embed(server, secret)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "quota_exceeded"
    assert 1 <= int(refused.headers["retry-after"]) <= 2
    assert embed(server, keys["search"]).status_code == 200  # quotas are per key
    time.sleep(1.1)
    assert embed(server, secret).status_code == 200  # recovered
    too_big = embed(server, secret, n=13)
    assert too_big.status_code == 400 and too_big.json()["error"]["code"] == "request_exceeds_quota"
    time.sleep(1.1)
    assert embed(server, secret, n=5).status_code == 200  # 4 + 1 + 5 texts within the minute
    texts = embed(server, secret, n=5)
    assert texts.status_code == 429 and 1 <= int(texts.headers["retry-after"]) <= 60
    metrics = httpx.get(server.url + "/metrics", timeout=10).text
    assert 'embedloop_quota_refusals_total{key="limited",quota="embed_requests_per_s"}' in metrics
    assert 'embedloop_quota_refusals_total{key="limited",quota="embed_texts_per_min"}' in metrics


def test_a_daily_feedback_quota_counts_a_keys_items(home, server, keys):
    secret = create(home, keys, "feeder", "feedback", "feedback_items_per_day=3")
    until(lambda: feedback(server, secret, n=2, start=3000).status_code == 200)
    refused = feedback(server, secret, n=2, start=3002)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 80_000
    assert feedback(server, secret, n=1, start=3002).status_code == 200  # exactly the quota


def test_purge_removes_a_keys_untrained_feedback_and_is_audited(home, server, keys):
    assert feedback(server, keys["teacher"], n=3, start=4000).status_code == 200
    with make_state(home) as state:
        by_key = {p.query: p.key for p in state.feedback.pairs()}
        assert by_key["question 4000"] == "teacher" and by_key["question 1000"] is None
        sent = sum(k == "teacher" for k in by_key.values())
    out = embedloop(home, "feedback", "purge", "--key", "teacher", "--reason", "wrong labels")
    assert f"{sent} pairs deleted" in out and "0 marked purged" in out
    with make_state(home) as state:
        assert not any(p.key == "teacher" for p in state.feedback.pairs())
        assert any(p.key == "feeder" for p in state.feedback.pairs())
        entry = state.registry.history(1)[0]
    assert (entry.action, entry.reason, entry.details["deleted_pairs"]) == ("feedback_purge", "wrong labels", sent)


def test_an_admin_key_creates_keys_over_http(server, keys):
    made = call(server, "POST", "/admin/keys", keys["ops"],
                json={"name": "robot", "scopes": ["embed"], "reason": "ci", "actor": "ana"})
    assert made.status_code == 201 and made.json()["secret"].startswith("el_")
    until(lambda: embed(server, made.json()["secret"]).status_code == 200)
    again = call(server, "POST", "/admin/keys", keys["ops"], json={"name": "robot", "scopes": ["embed"]})
    assert again.status_code == 409
    bad = call(server, "POST", "/admin/keys", keys["ops"], json={"name": "x", "scopes": ["write"]})
    assert bad.status_code == 400 and "unknown scope" in bad.json()["error"]["message"]
    history = call(server, "GET", "/admin/history?limit=1", keys["ops"]).json()["data"][0]
    assert (history["action"], history["actor"]) == ("key_create", "ana (key:ops)")
