"""The review pages in-process: who may see them, what they show, and moves made through forms."""

import contextlib
import re

import httpx
import pytest

from embedloop.core.access.keys import Scope
from embedloop.core.models.registry import PRODUCTION
from embedloop.service.app import create_app
from embedloop.service.server import Server
from tests.conftest import make_state

pytestmark = pytest.mark.anyio


@pytest.fixture
async def started(review_home):
    """A started server on the review home, with an admin key ``ops`` and an embed-only key ``app``."""
    state = make_state(review_home)
    _, admin_secret = state.keys.create("ops", frozenset({Scope.ADMIN}))
    _, embed_secret = state.keys.create("app", frozenset({Scope.EMBED}))
    server = Server(state)
    await server.start()
    yield server, admin_secret, embed_secret
    await server.stop()
    state.close()


def browser(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(server)), base_url="http://review.test")


@contextlib.asynccontextmanager
async def signed_in(server: Server, secret: str):
    async with browser(server) as client:
        response = await client.post("/admin/review/login", data={"key": secret, "next": "/admin/review"})
        assert response.status_code == 303 and "embedloop_review" in response.headers["set-cookie"]
        assert "httponly" in response.headers["set-cookie"].lower()
        assert "samesite=strict" in response.headers["set-cookie"].lower()
        yield client


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


async def test_without_a_login_every_page_and_move_sends_the_browser_to_sign_in(started):
    server, _, _ = started
    async with browser(server) as client:
        for path in ("/admin/review", "/admin/review/versions/v2"):
            response = await client.get(path)
            assert response.status_code == 303 and response.headers["location"].startswith("/admin/review/login")
        response = await client.post("/admin/review/versions/v2/approve", data={"reason": "ship it", "csrf": "x"})
        assert response.status_code == 303
    assert server.state.registry.alias(PRODUCTION) == "v1"


@pytest.mark.parametrize("which, status", [("wrong", 401), ("embed-only", 403)])
async def test_a_key_that_is_not_admin_sees_nothing(started, which, status):
    server, _, embed_secret = started
    secret = {"wrong": "el_nope_000", "embed-only": embed_secret}[which]
    async with browser(server) as client:
        response = await client.post("/admin/review/login", data={"key": secret})
        assert response.status_code == status and "set-cookie" not in response.headers
        assert "v2" not in response.text and "Sign in" in response.text
        assert (await client.get("/admin/review")).status_code == 303


async def test_the_candidate_page_shows_the_recorded_figures_and_the_answers_that_changed(started):
    server, admin_secret, _ = started
    gates = server.state.registry.get("v2").metrics["gates"]
    async with signed_in(server, admin_secret) as client:
        index = await client.get("/admin/review")
        assert index.status_code == 200 and "v2</a></strong> passed its gates" in index.text
        assert index.text.count('src="data:image/svg+xml;base64,') == 1  # the probe history chart
        assert 'id="channels"' not in index.text  # none yet
        server.state.channels.create("index-main")
        listed = (await client.get("/admin/review")).text
        assert "embedloop@index-main</td><td>v1</td><td>v1</td>" in listed
        page = await client.get("/admin/review/versions/v2")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    html = page.text
    table = html[html.index('id="groups"'):html.index("</table>", html.index('id="groups"'))]
    for group, figures in gates["candidate_probe_groups"].items():
        assert f"<td>{group}</td>" in table and f"{figures['mrr@10']:.4f}" in table
    assert f"{gates['gain']['ci_low']:+.4f}" in html and 'id="groups-chart"' in html
    fell = gates["changed_queries"]["fell"][0]
    text = server.state.corpus.texts([fell["production_top"][0]])[fell["production_top"][0]]
    assert fell["question"] in html and text[:60] in html  # the answer's text, looked up in the corpus
    assert html.count('class="relevant"') >= 1
    compat = gates["compatibility"]
    row = html[html.index('id="compatibility"'):html.index("</tr>", html.index('id="compatibility"'))]
    assert f"{compat['cross']['mrr@10']:.4f}" in row and f"{compat['older']['mrr@10']:.4f}" in row
    adapter = html[html.index('id="adapter"'):html.index("</tr>", html.index('id="adapter"'))]
    if compat["adapter"]["served"]:
        assert "embedloop@v2~v1" in adapter and f"{compat['adapter']['cross']['mrr@10']:.4f}" in adapter
    else:
        assert "not served" in adapter and compat["adapter"]["why"] in adapter
    for form in ("approve-form", "reject-form"):
        assert f'id="{form}"' in html
    assert 'id="rollback-form"' not in html  # v2 is not in production


async def test_approving_through_the_form_moves_production_and_is_audited_under_the_key(started):
    server, admin_secret, _ = started
    async with signed_in(server, admin_secret) as client:
        csrf = csrf_of((await client.get("/admin/review/versions/v2")).text)
        response = await client.post("/admin/review/versions/v2/approve",
                                     data={"csrf": csrf, "reason": "groups all up", "actor": "ana"})
        assert response.status_code == 303
        page = await client.get(response.headers["location"])
    assert server.state.registry.alias(PRODUCTION) == "v2"
    entry = server.state.registry.history(1)[0]
    assert (entry.action, entry.actor, entry.reason, entry.to_version) == ("approve", "ana (key:ops)",
                                                                           "groups all up", "v2")
    assert "Approved: v2 is in production." in page.text and "groups all up" in page.text
    assert 'id="rollback-form"' in page.text and 'value="v1"' in page.text  # now it can be rolled back


@pytest.mark.parametrize("case", ["no reason", "blank reason", "no csrf", "wrong csrf", "cross-site", "other origin"])
async def test_a_refused_move_changes_nothing(started, case):
    server, admin_secret, _ = started
    before = len(server.state.registry.history())
    async with signed_in(server, admin_secret) as client:
        csrf = csrf_of((await client.get("/admin/review/versions/v2")).text)
        data, headers, status = {"csrf": csrf, "reason": "fine"}, {}, 403
        if case == "no reason":
            data, status = {"csrf": csrf}, 400
        elif case == "blank reason":
            data, status = {"csrf": csrf, "reason": "   "}, 400
        elif case == "no csrf":
            data = {"reason": "fine"}
        elif case == "wrong csrf":
            data["csrf"] = csrf[::-1]
        elif case == "cross-site":
            headers = {"sec-fetch-site": "cross-site"}
        else:
            headers = {"origin": "https://evil.example"}
        response = await client.post("/admin/review/versions/v2/approve", data=data, headers=headers)
    assert response.status_code == status, response.text
    if status == 400:
        assert "a reason is required" in response.text
    assert server.state.registry.alias(PRODUCTION) == "v1" and len(server.state.registry.history()) == before


async def test_a_move_the_registry_refuses_is_shown_not_made(started):
    server, admin_secret, _ = started
    async with signed_in(server, admin_secret) as client:
        csrf = csrf_of((await client.get("/admin/review/versions/v2")).text)
        await client.post("/admin/review/versions/v2/reject", data={"csrf": csrf, "reason": "not convinced"})
        assert server.state.registry.state("v2").state == "rejected"
        again = await client.post("/admin/review/versions/v2/approve", data={"csrf": csrf, "reason": "changed mind"})
        assert again.status_code == 409 and 'id="error"' in again.text
        stale = await client.post("/admin/review/versions/v1/rollback",
                                  data={"csrf": csrf, "reason": "r", "to": "v2", "production": "v0"})
        assert stale.status_code == 409 and "nothing was rolled back" in stale.text
        missing = await client.get("/admin/review/versions/v99")
        assert missing.status_code == 404
    assert server.state.registry.alias(PRODUCTION) == "v1"


async def test_revoking_the_key_ends_its_session_and_a_forged_cookie_opens_nothing(started):
    server, admin_secret, _ = started
    async with signed_in(server, admin_secret) as client:
        assert (await client.get("/admin/review")).status_code == 200
        cookie = client.cookies.get("embedloop_review")
        server.state.keys.revoke("ops")
        server.access.load()  # what the service does every access.refresh_s
        assert (await client.get("/admin/review")).status_code == 303
    async with browser(server) as forged:
        forged.cookies.set("embedloop_review", cookie[:-4] + "AAAA", domain="review.test", path="/admin/review")
        assert (await forged.get("/admin/review")).status_code == 303


async def test_login_redirects_only_within_the_review_pages_and_refuses_huge_forms(started):
    server, admin_secret, _ = started
    async with browser(server) as client:
        huge = await client.post("/admin/review/login", data={"key": "x" * 20_000})
        assert huge.status_code == 413
        for target in ("https://evil.example/", "//evil.example/admin/review", "/admin/review/versions/v2"):
            response = await client.post("/admin/review/login", data={"key": admin_secret, "next": target})
            expected = target if target.startswith("/admin/review") else "/admin/review"
            assert response.headers["location"] == expected


async def test_with_no_admin_credential_the_page_says_how_to_get_one(tiny_home):
    server = Server(make_state(tiny_home))
    await server.start()
    try:
        async with browser(server) as client:
            response = await client.post("/admin/review/login", data={"key": "anything"})
        assert response.status_code == 503 and "embedloop keys create --scopes admin" in response.text
    finally:
        await server.stop()
        server.state.close()
