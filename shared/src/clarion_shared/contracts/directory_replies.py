"""Topic ``clarion.directory.replies``: the user-directory's answers to lookups.

Key: the request id. Uids not in the directory are listed in ``missing``, never dropped.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Contract, JsonObject


class UserProfile(Contract):
    """What the dispatcher needs of a user to render and deliver."""

    uid: str
    name: str = ""
    avatar: str | None = None
    link: str | None = None
    role: str = "default"
    status: Literal["online", "offline"] = "offline"
    tags: list[str] = Field(default_factory=list)
    metadata: JsonObject = Field(default_factory=dict)


class UsersResolved(Contract):
    type: Literal["users_resolved"] = "users_resolved"
    v: Literal[1] = 1
    request_id: str
    app_id: str
    users: list[UserProfile] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
