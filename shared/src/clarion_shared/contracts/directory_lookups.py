"""Topic ``clarion.directory.lookups``: resolve a chunk of uids to user profiles.

Key: the app id. The user-directory answers on ``reply_topic`` (normally
``clarion.directory.replies``) with the same ``request_id``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Contract

MAX_LOOKUP_UIDS = 1000


class LookupUsers(Contract):
    type: Literal["lookup_users"] = "lookup_users"
    v: Literal[1] = 1
    request_id: str
    reply_topic: str
    app_id: str
    uids: list[str] = Field(max_length=MAX_LOOKUP_UIDS)
