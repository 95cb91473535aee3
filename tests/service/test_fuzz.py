"""Every route, fuzzed with generated bodies, paths and credentials against a real server, with no
keys and then with keys: the answer is never a 5xx, and every error is an OpenAI error body."""

from __future__ import annotations

import time
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedloop.core.access.keys import Scope
from tests.conftest import copy_home, make_state
from tests.servers import start_server

pytestmark = pytest.mark.integration
EXAMPLES = 60  # per route and phase: bounded, loopback only

ROUTES = [
    ("POST", "/v1/embeddings"), ("GET", "/v1/models"), ("POST", "/v1/feedback"),
    ("GET", "/admin/models"), ("GET", "/admin/history"), ("POST", "/admin/models/{name}/approve"),
    ("POST", "/admin/models/{name}/reject"), ("POST", "/admin/rollback"), ("GET", "/admin/keys"),
    ("POST", "/admin/keys"), ("POST", "/admin/keys/{name}/revoke"),
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20)
plausible = st.fixed_dictionaries({}, optional={  # near-valid bodies reach deeper than random JSON
    "model": st.sampled_from(["embedloop", "embedloop@v1", "embedloop@v99", "other"]) | st.text(max_size=10),
    "input": st.text(max_size=30) | st.lists(st.text(max_size=30), max_size=4) | st.lists(st.integers(), max_size=4),
    "encoding_format": st.sampled_from(["float", "base64", "int8"]), "dimensions": st.integers(-5, 1000),
    "query": st.text(max_size=30), "positive_id": st.sampled_from(["d1", "nope"]),
    "positive_text": st.text(max_size=30),
    "negative_ids": st.lists(st.text(max_size=5), max_size=3), "group": st.text(max_size=10),
    "reason": st.text(max_size=10) | st.integers(), "actor": st.text(max_size=10), "to": st.text(max_size=5),
    "name": st.text(max_size=20), "scopes": st.lists(st.sampled_from(["embed", "feedback", "admin", "x"])),
    "quotas": st.dictionaries(st.sampled_from(["embed_requests_per_s", "x"]), json_values, max_size=2)})
bodies = json_values.map(lambda v: {"json": v}) | plausible.map(lambda v: {"json": v}) | \
    st.binary(max_size=200).map(lambda b: {"content": b})
names = st.sampled_from(["v1", "v2", "fuzz-embed"]) | st.text(st.characters(codec="ascii", exclude_characters="/?#"),
                                                              min_size=1, max_size=12)
queries = st.sampled_from(["", "?limit=5", "?limit=0", "?limit=abc", "?limit=99999999999999999999"])


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_registered):
    home = copy_home(tiny_registered, tmp_path_factory.mktemp("fuzz"), {"d1": "Glaucoma damages the optic nerve."})
    srv = start_server(home, tmp_path_factory.mktemp("logs") / "server.log",
                       env={"EMBEDLOOP_ACCESS__REFRESH_S": "0.2", "EMBEDLOOP_ADMIN__TOKEN": "bootstrap-token"})
    yield srv
    srv.stop()


def fuzz(server, credentials: list[str | None]) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        @settings(max_examples=EXAMPLES * len(ROUTES), deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(route=st.sampled_from(ROUTES), body=bodies, name=names, query=queries,
               secret=st.sampled_from(credentials))
        def one(route, body, name, query, secret):
            method, path = route
            headers = {"authorization": f"Bearer {secret}"} if secret else {}
            response = http.request(method, path.format(name=quote(name, safe="")) + query, headers=headers,
                                    **(body if method == "POST" else {}))
            assert response.status_code < 500, (route, body, response.text)
            # (a path with a newline never reaches the app: BentoML's mount answers a plain 404)
            if response.status_code >= 400 and not (response.status_code == 404 and "\n" in name):
                error = response.json()["error"]
                assert set(error) == {"message", "type", "param", "code"} and error["message"]

        one()


def test_no_route_answers_5xx_without_keys(server):
    fuzz(server, [None, "sk-anything", "bootstrap-token"])


def test_no_route_answers_5xx_with_keys(server):
    with make_state(server.home) as state:
        secrets = [state.keys.create(f"fuzz-{scope.value}", frozenset({scope}))[1] for scope in Scope]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        deadline = time.monotonic() + 10
        while http.post("/v1/embeddings", json={"input": "x"}).status_code != 401:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    fuzz(server, [None, "el_0000_wrong", "bootstrap-token", *secrets])
