"""The admin API's request bodies (validated by the routes) and answers (described for /openapi.json)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: StrictStr | None = Field(None, max_length=10_000, description="why (kept in the audit log)")
    actor: StrictStr | None = Field(None, max_length=128,
                                    description="the person behind the key, recorded beside its name")


class MoveBody(Body):
    to: StrictStr | None = Field(None, max_length=32, description="rollback only: the version to go back to")


class KeyCreateBody(Body):
    name: StrictStr = Field(max_length=64)
    scopes: list[StrictStr] = Field(description="embed, feedback, admin")
    quotas: dict[str, StrictInt] = Field(default_factory=dict, description="this key's own quotas")


class ChannelCreateBody(Body):
    name: StrictStr = Field(max_length=64, description="e.g. index-main; clients then ask for embedloop@index-main")
    version: StrictStr | None = Field(None, max_length=32,
                                      description="the version the stored vectors are built with (default: production)")
    adapt: StrictBool = Field(False, description="when it cannot follow production, follow through production's query "
                              "adapter into the stored vectors' space (if the gates registered one)")


class ReindexedBody(Body):
    to: StrictStr = Field(max_length=32, description="the version the channel's documents were embedded again with")


class ChannelCard(BaseModel):
    name: str
    serves: str = Field(description="what embeds the channel's queries: a version, or a version's query adapter "
                        "(v2~v1: v2's vectors rotated into v1's space)")
    built_with: str = Field(description="the version that embedded its stored documents")
    lagging: bool = Field(description="serves another version than production")
    adapt: bool = Field(description="follows through query adapters when it cannot follow plainly")
    created_at: str


class ChannelList(BaseModel):
    data: list[ChannelCard]


class AliasMoved(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    alias: str
    from_: str | None = Field(alias="from")
    to: str


class Rejected(BaseModel):
    version: str
    state: Literal["rejected"]


class VersionCard(BaseModel):
    version: str
    parent: str | None
    created_at: str
    state: str | None
    reasons: list[str]
    aliases: list[str]
    metrics: dict[str, Any]
    training: dict[str, Any]


class VersionList(BaseModel):
    data: list[VersionCard]


class AuditCard(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    at: str
    actor: str
    action: str
    alias: str | None
    from_: str | None = Field(alias="from")
    to: str | None
    reason: str
    details: dict[str, Any]


class AuditList(BaseModel):
    data: list[AuditCard]


class KeyCard(BaseModel):
    name: str
    key_id: str
    scopes: list[str]
    quotas: dict[str, int]
    created_at: str
    created_by: str
    revoked_at: str | None


class KeyCreated(KeyCard):
    secret: str = Field(description="shown only in this answer: only its digest is stored")


class KeyList(BaseModel):
    data: list[KeyCard]
