"""The users API's answers (owned by the user-directory, forwarded by the gateway)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict

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
