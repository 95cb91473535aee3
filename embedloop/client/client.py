"""A typed Python client for what OpenAI's client does not cover: feedback, versions, the audit log,
approve / reject / roll back, index channels and API keys. Embeddings themselves: use any OpenAI-compatible client.

Bodies and answers are the API's own pydantic models (:mod:`embedloop.api`), so the client and the
service agree by construction. A refused request raises :class:`ClientError` with the service's
status, error code and message (and ``retry_after`` for a 429).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from embedloop.api.admin import (
    AliasMoved,
    AuditCard,
    AuditList,
    ChannelCard,
    ChannelList,
    KeyCard,
    KeyCreated,
    KeyList,
    VersionCard,
    VersionList,
)
from embedloop.api.v1 import FeedbackResult
from embedloop.core.labels.feedback import FeedbackItem

M = TypeVar("M", bound=BaseModel)


class ClientError(Exception):
    def __init__(self, status: int, code: str | None, message: str, param: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.param, self.retry_after = status, code, message, param, retry_after


class Client:
    """``Client("http://127.0.0.1:3000", api_key="el_…")``; use it as a context manager or ``close()`` it.
    ``transport`` lets tests (or an in-process app) stand in for the network."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # -- feedback ---------------------------------------------------------------------------------
    def feedback(self, items: FeedbackItem | Iterable[FeedbackItem]) -> FeedbackResult:
        """Store judgements (written whole or not at all); needs the ``feedback`` scope."""
        batch = [items] if isinstance(items, FeedbackItem) else list(items)
        body = [item.model_dump(exclude_none=True, exclude_defaults=True) for item in batch]
        return self._call("POST", "/v1/feedback", FeedbackResult, json=body)

    # -- versions ---------------------------------------------------------------------------------
    def versions(self) -> list[VersionCard]:
        return self._call("GET", "/admin/models", VersionList).data

    def version(self, name: str) -> VersionCard:
        found = [v for v in self.versions() if v.version == name]
        if not found:
            raise ClientError(404, "version_not_found", f"no version {name!r}")
        return found[0]

    def history(self, limit: int = 100) -> list[AuditCard]:
        """The audit log, newest first."""
        return self._call("GET", "/admin/history", AuditList, params={"limit": limit}).data

    def approve(self, version: str, reason: str, actor: str | None = None) -> AliasMoved:
        return self._call("POST", f"/admin/models/{version}/approve", AliasMoved, json=move(reason, actor))

    def reject(self, version: str, reason: str, actor: str | None = None) -> None:
        self._call("POST", f"/admin/models/{version}/reject", None, json=move(reason, actor))

    def rollback(self, reason: str, to: str | None = None, actor: str | None = None) -> AliasMoved:
        """Production back to the version before it (or ``to``)."""
        return self._call("POST", "/admin/rollback", AliasMoved, json={**move(reason, actor), "to": to})

    # -- index channels ---------------------------------------------------------------------------
    def channels(self) -> list[ChannelCard]:
        return self._call("GET", "/admin/channels", ChannelList).data

    def create_channel(self, name: str, version: str | None = None, reason: str = "",
                       adapt: bool = False) -> ChannelCard:
        """A channel whose stored vectors are built with ``version`` (default: production); embed
        documents and queries for it as ``embedloop@<name>``. ``adapt``: when it cannot follow
        production, it follows through production's query adapter into its vectors' space."""
        return self._call("POST", "/admin/channels", ChannelCard,
                          json={"name": name, "version": version, "reason": reason, "adapt": adapt})

    def channel_reindexed(self, name: str, to: str, reason: str = "") -> ChannelCard:
        """The channel's documents were embedded again with ``to``: the channel serves it from now on."""
        return self._call("POST", f"/admin/channels/{name}/reindexed", ChannelCard, json={"to": to, "reason": reason})

    # -- keys -------------------------------------------------------------------------------------
    def keys(self) -> list[KeyCard]:
        return self._call("GET", "/admin/keys", KeyList).data

    def create_key(self, name: str, scopes: Iterable[str], quotas: dict[str, int] | None = None,
                   reason: str = "") -> KeyCreated:
        """A new key; its ``secret`` is in this answer only."""
        return self._call("POST", "/admin/keys", KeyCreated,
                          json={"name": name, "scopes": list(scopes), "quotas": quotas or {}, "reason": reason})

    def revoke_key(self, name: str, reason: str = "") -> KeyCard:
        return self._call("POST", f"/admin/keys/{name}/revoke", KeyCard, json={"reason": reason})

    # -- the wire ---------------------------------------------------------------------------------
    def _call(self, method: str, path: str, answer: type[M] | None, **request: Any) -> M | None:
        response = self.http.request(method, path, **request)
        if response.is_error:
            raise error_of(response)
        return answer.model_validate(response.json()) if answer else None


def move(reason: str, actor: str | None) -> dict[str, str]:
    return {"reason": reason, **({"actor": actor} if actor else {})}


def error_of(response: httpx.Response) -> ClientError:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        error = {"message": response.text[:500] or response.reason_phrase, "code": None}
    retry = response.headers.get("retry-after")
    return ClientError(response.status_code, error.get("code"), error.get("message", ""), error.get("param"),
                       float(retry) if retry else None)
