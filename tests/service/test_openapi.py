"""/openapi.json and /docs against a real server, and schemathesis driving every operation from the
description: no 5xx, and no answer that breaks the description (status, content type, schema)."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from starlette.routing import Route

from embedloop.core.access.keys import Scope
from embedloop.service.app import create_app
from tests.conftest import copy_home, make_state
from tests.servers import start_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_registered):
    home = copy_home(tiny_registered, tmp_path_factory.mktemp("openapi"), {"d1": "Glaucoma damages the optic nerve."})
    with make_state(home) as state:
        _, secret = state.keys.create("contract", frozenset(Scope))
    srv = start_server(home, tmp_path_factory.mktemp("logs") / "server.log")
    srv.secret = secret
    yield srv
    srv.stop()


def json_routes() -> set[tuple[str, str]]:
    """The app's JSON routes: /v1 and /admin, but the HTML review pages."""
    return {(method, route.path) for route in create_app().routes
            if isinstance(route, Route) and route.path.startswith(("/v1/", "/admin/"))
            and not route.path.startswith("/admin/review") for method in route.methods - {"HEAD"}}


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


def test_the_description_and_the_docs_page_are_served(server):
    spec = httpx.get(server.url + "/openapi.json", timeout=10).json()
    assert spec["openapi"].startswith("3.1")
    operations = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert ("POST", "/v1/embeddings") in operations and ("POST", "/admin/keys") in operations
    assert operations == json_routes()  # every JSON route is described
    request = spec["components"]["schemas"]["EmbeddingRequest"]
    assert set(request["required"]) == {"input", "model"}
    page = httpx.get(server.url + "/docs", timeout=10)
    assert page.status_code == 200 and "/openapi.json" in page.text
    bundle = httpx.get(server.url + "/docs/static/swagger-ui-bundle.js", timeout=10)
    assert bundle.status_code == 200 and len(bundle.content) > 100_000  # served locally, no CDN


def test_every_operation_keeps_its_contract(api_schema, server):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == len(json_routes())
    for operation in operations:  # (schemathesis' pytest plugin, not yet for this pytest, would parametrize)
        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
        def keeps_contract(case):
            # Every check but "schema-valid data is accepted": whether a valid request succeeds depends on
            # the state (which versions and keys exist, the model's dimensions), not on the description.
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {server.secret}"}
            case.call_and_validate(base_url=server.url, excluded_checks=[positive_data_acceptance])

        keeps_contract()
