"""Topic ``clarion.users.changes``: which users the user-directory has just changed.

Key: the app id. The directory publishes one record per write call (a create, an
update, a delete, an import of up to 1,000 users, the user events of one fetch), after
the write is stored and before the call answers. A record names the users and carries
none of their data: whoever holds a copy of a profile (each dispatcher process keeps a
cache of them, ``clarion_dispatcher.users``) drops it and asks the owner again.

Every dispatcher instance reads the topic from its end, without a consumer group, as
the reply topics are read: a process starts with an empty cache and sees every change
made after it started.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Contract

# Uids per record, at most: the largest write call (an import of 1,000 users) is one
# record; a producer with more (a fetch of user events) publishes several.
MAX_CHANGED_UIDS = 1000


class UsersChanged(Contract):
    type: Literal["users_changed"] = "users_changed"
    v: Literal[1] = 1
    app_id: str
    uids: list[str] = Field(min_length=1, max_length=MAX_CHANGED_UIDS)
    occurred_at: int
