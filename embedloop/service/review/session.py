"""Review-page logins: a browser signs in once with an admin-scoped key (or ``admin.token``) and
gets a cookie, instead of sending the key with every page.

The cookie is signed (itsdangerous, with an installation secret every replica shares) and carries
the key's digest — never its secret — and a random CSRF token. It is HttpOnly and SameSite=Strict.
Every page re-checks the digest against the service's current keys, so revoking the key ends the
session within ``access.refresh_s``. A form post must carry the session's CSRF token and must not
come from another site (``Sec-Fetch-Site`` / ``Origin``).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from embedloop.core.access.keys import ApiKey, Scope, digest_of
from embedloop.service.access import Access

COOKIE = "embedloop_review"
PATH = "/admin/review"


class LoginRefused(Exception):
    """The credential given at login cannot open the review page; ``status`` says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Session:
    key: ApiKey
    csrf: str

    def valid_csrf(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(given, self.csrf)


class Sessions:
    def __init__(self, access: Access, secret: bytes, max_age_s: float) -> None:
        self.access, self.max_age_s = access, max_age_s
        self.signer = URLSafeTimedSerializer(secret, salt="review-session")

    def login(self, given: str, response: Response, request: Request) -> ApiKey:
        """Check ``given`` (a key's secret or ``admin.token``) and set the session cookie on ``response``."""
        if not self.access.admin_possible:
            raise LoginRefused(503, "no credential can open this page yet: create a key with the admin scope "
                                    "(`embedloop keys create --scopes admin`) or set admin.token")
        digest = digest_of(given.strip())
        key = self.access.key_of(digest)
        if key is None:
            raise LoginRefused(401, "unknown or revoked key")
        if Scope.ADMIN not in key.scopes:
            raise LoginRefused(403, f"key {key.name!r} lacks the 'admin' scope")
        cookie = self.signer.dumps({"digest": digest, "csrf": secrets.token_urlsafe(32)})
        response.set_cookie(COOKIE, cookie, max_age=int(self.max_age_s), path=PATH, httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        return key

    def current(self, request: Request) -> Session | None:
        """The request's session, if its cookie is genuine, not expired, and its key still admin."""
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return None
        try:
            data = self.signer.loads(cookie, max_age=self.max_age_s)
        except BadSignature:  # also an expired signature
            return None
        key = self.access.key_of(data.get("digest", ""))
        if key is None or Scope.ADMIN not in key.scopes:
            return None
        return Session(key, data.get("csrf", ""))


def logout(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH)


def cross_site(request: Request) -> bool:
    """Whether a form post comes from another site. Browsers send ``Sec-Fetch-Site``; older ones at
    least ``Origin``, compared with the Host the request was sent to (a TLS proxy in front keeps it)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc != request.headers.get("host", "")
