"""The review pages under ``/admin/review``: server-rendered HTML (Jinja2 templates) for the people
who approve, reject and roll back versions.

Reading needs a login (an admin-scoped key, :mod:`embedloop.service.review.session`); every move is
a plain HTML form — no JavaScript needed — with a required reason, checked against cross-site
posts, and made through the same audited :class:`~embedloop.core.models.promotion.Promotion`
moves as the command line and the admin API, under the key's name.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from embedloop.core.models.registry import PRODUCTION, RegistryError, UnknownVersion
from embedloop.core.validation import first_problem
from embedloop.service.review import charts
from embedloop.service.review.material import overview, review
from embedloop.service.review.session import PATH, LoginRefused, Session, cross_site, logout
from embedloop.service.server import Server

MAX_FORM = 16 * 1024
MOVES = ("approve", "reject", "rollback")
DONE = {"approve": "Approved: {v} is in production.", "reject": "Rejected {v}.",
        "rollback": "Rolled back: {v} is in production."}

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters["num"] = lambda x, digits=4: "–" if x is None else f"{x:.{digits}f}"
templates.env.filters["signed"] = lambda x, digits=4: "–" if x is None else f"{x:+.{digits}f}"
templates.env.filters["utc"] = lambda t: f"{charts.when(t) if isinstance(t, (int, float)) else t:%Y-%m-%d %H:%M}"


class MoveForm(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")

    csrf: str = ""
    reason: str = Field(min_length=1, max_length=2000)
    actor: str = Field("", max_length=100)
    to: str = Field("", max_length=32)  # rollback: the version production goes back to
    production: str = Field("", max_length=32)  # rollback: the version the page showed in production


def page(request: Request, name: str, status: int = 200, **context) -> Response:
    response = templates.TemplateResponse(request, name, {"prefix": PATH, **context}, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"  # no clickjacking of the buttons
    return response


def session_of(request: Request) -> Session | None:
    server: Server = request.app.state.server
    return server.sessions.current(request) if server.sessions else None


def to_login(request: Request) -> Response:
    return RedirectResponse(f"{PATH}/login?next={quote(request.url.path)}", status_code=303)


async def read_form(request: Request) -> FormData:
    if int(request.headers.get("content-length") or 0) > MAX_FORM:
        raise HTTPException(413, f"form larger than {MAX_FORM} bytes")
    return await request.form(max_files=0, max_fields=20)


# -- logging in and out ---------------------------------------------------------------------------
async def login_page(request: Request) -> Response:
    return page(request, "login.html", next=safe_next(request.query_params.get("next")))


async def login(request: Request) -> Response:
    server: Server = request.app.state.server
    if cross_site(request):
        return page(request, "message.html", 403, title="Refused", message="a login from another site is refused")
    form = await read_form(request)
    target = safe_next(form.get("next"))
    response = RedirectResponse(target, status_code=303)
    try:
        server.sessions.login(str(form.get("key") or ""), response, request)
    except LoginRefused as refused:
        return page(request, "login.html", refused.status, error=str(refused), next=target)
    return response


async def logout_route(request: Request) -> Response:
    session = session_of(request)
    form = await read_form(request)
    if session is not None and (cross_site(request) or not session.valid_csrf(str(form.get("csrf") or ""))):
        return page(request, "message.html", 403, title="Refused", message="cross-site or stale form")
    response = RedirectResponse(f"{PATH}/login", status_code=303)
    logout(response)
    return response


def safe_next(target: object) -> str:
    """Only a page of this site, so a crafted login link cannot send the browser elsewhere."""
    text = str(target or "")
    return text if text.startswith(PATH) and "//" not in text and "\\" not in text else PATH


# -- reading --------------------------------------------------------------------------------------
async def index(request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return to_login(request)
    server: Server = request.app.state.server
    view = await asyncio.to_thread(overview, server.state)
    chart = await asyncio.to_thread(charts.history_chart, view.probe_runs, view.drift_runs,
                                    server.settings.gates.metric)
    return page(request, "index.html", session=session, view=view, history_chart=chart)


async def version_page(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    session = session_of(request)
    if session is None:
        return to_login(request)
    server: Server = request.app.state.server
    name = request.path_params["version"]
    try:
        view = await asyncio.to_thread(review, server.state, name)
    except UnknownVersion:
        return page(request, "message.html", 404, session=session, title="Not found",
                    message=f"no version {name!r} is registered")
    chart = await asyncio.to_thread(charts.groups_chart, view.groups, view.metric, view.against or "production", name)
    done = request.query_params.get("done")
    notice = DONE[done].format(v=name if done != "rollback" else request.query_params.get("to", "")) \
        if done in DONE and error is None else None
    return page(request, "version.html", status, session=session, view=view, groups_chart=chart, notice=notice,
                error=error)


# -- moving ---------------------------------------------------------------------------------------
async def move(request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return to_login(request)
    name, action = request.path_params["version"], request.path_params["move"]
    if action not in MOVES:
        return page(request, "message.html", 404, session=session, title="Not found", message=f"no move {action!r}")
    form = await read_form(request)
    if cross_site(request) or not session.valid_csrf(str(form.get("csrf") or "")):
        return page(request, "message.html", 403, session=session, title="Refused",
                    message="this form came from another site or an old page: reload the page and try again")
    try:
        asked = MoveForm.model_validate(dict(form))
    except ValidationError as exc:
        problem = first_problem(exc)
        message = "a reason is required: it is kept in the audit log" if problem.field == "reason" else str(problem)
        return await version_page(request, error=message, status=400)
    server: Server = request.app.state.server
    actor = f"{asked.actor} (key:{session.key.name})" if asked.actor else f"key:{session.key.name}"
    try:
        target = await asyncio.to_thread(make_move, server, action, name, asked, actor)
    except RegistryError as exc:
        return await version_page(request, error=str(exc), status=409)
    return RedirectResponse(f"{PATH}/versions/{quote(name)}?done={action}&to={quote(target)}", status_code=303)


def make_move(server: Server, action: str, name: str, asked: MoveForm, actor: str) -> str:
    """The audited move; returns the version now in production (or the one rejected)."""
    promotion = server.state.promotion
    if action == "approve":
        return promotion.approve(name, actor=actor, reason=asked.reason).to_version
    if action == "reject":
        promotion.reject(name, actor=actor, reason=asked.reason)
        return name
    current = server.state.registry.alias(PRODUCTION)
    if asked.production and current != asked.production:
        raise RegistryError(f"production moved to {current} since this page was loaded: nothing was rolled back")
    return promotion.rollback(to=asked.to or None, actor=actor, reason=asked.reason).to_version


routes = [
    Route(PATH, index, methods=["GET"]),
    Route(f"{PATH}/login", login_page, methods=["GET"]),
    Route(f"{PATH}/login", login, methods=["POST"]),
    Route(f"{PATH}/logout", logout_route, methods=["POST"]),
    Route(f"{PATH}/versions/{{version}}", version_page, methods=["GET"]),
    Route(f"{PATH}/versions/{{version}}/{{move}}", move, methods=["POST"]),
]
