"""The users API's answers and requests (owned by the user-directory, forwarded by the
gateway)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, JsonValue, StringConstraints

from ..api import ApiModel
from ..contracts.base import JsonObject

UserStatus = Literal["online", "offline"]


class UserPublic(ApiModel):
    """A user as the public API shows it (camelCase, Unix seconds, null when absent)."""

    model_config = ConfigDict(frozen=True)

    uid: str
    name: str
    avatar: str | None
    link: str | None
    role: str
    metadata: JsonObject
    tags: list[str]
    status: UserStatus
    last_active_at: int | None
    created_at: int
    updated_at: int


class ImportFailure(ApiModel):
    model_config = ConfigDict(frozen=True)

    index: int
    uid: str | None
    code: str
    message: str


class ImportResult(ApiModel):
    """``POST /v3/users/import`` answer: how many were created and updated, and the
    entries that failed, by index."""

    model_config = ConfigDict(frozen=True)

    created: int
    updated: int
    failed: list[ImportFailure]


# The requests' shapes, as the user-directory parses them (``clarion_directory.users``):
# the gateway forwards the bodies unparsed and documents them with these.
UID_PATTERN = r"^[A-Za-z0-9_-]+$"
UID_MAX_LENGTH = 100
MAX_IMPORT = 1000

Uid = Annotated[
    str, StringConstraints(min_length=1, max_length=UID_MAX_LENGTH, pattern=UID_PATTERN)
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Role = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Url = Annotated[str, StringConstraints(max_length=2048)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Tags = Annotated[list[Tag], Field(max_length=100)]


class UserCreate(ApiModel):
    """``POST /v3/users`` body (and one entry of an import). Unknown fields are ignored;
    ``metadata["@private"]`` holds contact points (``email``, ``contactNumber``,
    ``pushTokens``)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"uid": "alice", "name": "Alice"}]})

    uid: Uid
    name: Name
    avatar: Url | None = None
    link: Url | None = None
    role: Role = "default"
    metadata: JsonObject = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)


class UserUpdate(ApiModel):
    """``PUT /v3/users/{uid}`` body: only the fields given change; ``null`` clears
    ``avatar``, ``link``, ``metadata`` and ``tags`` and resets ``role`` (never ``name``)."""

    name: Name | None = None
    avatar: Url | None = None
    link: Url | None = None
    role: Role | None = None
    metadata: JsonObject | None = None
    tags: Tags | None = None


class UserImport(ApiModel):
    """``POST /v3/users/import`` body: each entry a ``UserCreate``, validated one by one
    (a bad entry is reported with its index in ``failed``)."""

    users: list[JsonValue] = Field(min_length=1, max_length=MAX_IMPORT)
