"""Who is calling: the API key a request carries, its scope for the route, and its quotas.

The service holds the active keys in memory by digest and re-reads them every
``access.refresh_s``, so a new or revoked key takes effect without a restart. Until the first key
is created the /v1 routes are open (the start-up log says so) and a bearer token, which OpenAI
clients always send, is ignored there; from then on every route needs a valid key — revoking the
last key does not open the service again. ``admin.token`` is an extra credential with the admin
scope, to create the first key over HTTP.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from datetime import datetime, timezone

from starlette.requests import Request

from embedloop.core.access.keys import ApiKey, KeyStore, Scope, digest_of
from embedloop.core.settings import Settings
from embedloop.service import metrics
from embedloop.service.errors import ApiError
from embedloop.service.quotas import Quotas

log = logging.getLogger(__name__)
ADMIN_TOKEN = "admin-token"  # the name moves made with admin.token are audited under


class Access:
    def __init__(self, store: KeyStore, settings: Settings) -> None:
        self.store, self.settings = store, settings
        self.quotas = Quotas(settings.access)
        self.keys: dict[str, ApiKey] = {}
        self.keyed = False
        token = settings.admin.token
        self.token_digest = digest_of(token.get_secret_value()) if token is not None else None
        self.token_key = ApiKey(ADMIN_TOKEN, "-", frozenset({Scope.ADMIN}), {},
                                datetime.now(timezone.utc), "settings", None)

    def load(self) -> None:
        self.keys, self.keyed = self.store.by_digest()

    def describe(self) -> str:
        if self.keyed:
            return f"API keys required on every route ({len(self.keys)} active)"
        return ("no API keys yet: /v1/embeddings and /v1/feedback are open to anyone who can reach this port; "
                "`embedloop keys create` makes every route need a key")

    async def follow(self) -> None:
        while True:
            await asyncio.sleep(self.settings.access.refresh_s)
            try:
                await asyncio.to_thread(self.load)
            except Exception:  # keep the keys we have; the next refresh tries again
                log.exception("could not re-read the API keys")

    @property
    def admin_possible(self) -> bool:
        """Whether any credential could hold the admin scope (a key exists, or ``admin.token`` is set)."""
        return self.keyed or self.token_digest is not None

    def key_of(self, digest: str) -> ApiKey | None:
        """The active key (or ``admin.token``) whose secret has this digest."""
        key = self.keys.get(digest)
        if key is None and self.token_digest and hmac.compare_digest(digest, self.token_digest):
            key = self.token_key
        return key

    def require(self, request: Request, scope: Scope | None) -> ApiKey | None:
        """The request's key, if it may use ``scope`` (None: any key); None when no key is needed."""
        given = bearer(request)
        key = self.key_of(digest_of(given)) if given else None
        if key is None:
            if not self.keyed and scope is not Scope.ADMIN:
                return None
            if scope is Scope.ADMIN and not self.admin_possible:
                raise ApiError(503, "the admin API needs a credential: create a key with the admin scope "
                               "(`embedloop keys create --scopes admin`) or set admin.token", code="admin_disabled")
            metrics.AUTH_REFUSALS.labels(scope.value if scope else "any", "401").inc()
            raise ApiError(401, "missing API key" if not given else "unknown or revoked API key", code="unauthorized",
                           headers={"WWW-Authenticate": "Bearer"})
        if scope is not None and scope not in key.scopes:
            if not self.keyed and scope is not Scope.ADMIN:  # an open route: the credential is not needed
                return None
            metrics.AUTH_REFUSALS.labels(scope.value, "403").inc()
            raise ApiError(403, f"key {key.name!r} lacks the {scope.value!r} scope", code="forbidden")
        request.state.key = key.name
        return key


def bearer(request: Request) -> str | None:
    """The secret of an ``Authorization: Bearer …`` header (never logged)."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    given = given.strip()
    return given if scheme.lower() == "bearer" and given else None
