"""Short-lived copies of whole apps' users, for large lookups on FerretDB."""

from __future__ import annotations

import asyncio

from cachetools import TTLCache

from .domain import User


class AppSnapshots:
    """Short-lived copies of whole apps' users, for large lookups on FerretDB.

    FerretDB 1.x reads all of an app's users for any ``$in`` lookup, so a large lookup
    costs the same as reading the app whole. Keeping that read for ``ttl_s`` lets the
    other lookups of the same fan-out (a 10,000-receiver send asks in chunks of 1,000)
    share it. A snapshot is never trusted for absence: uids it lacks are read again,
    so a user created a moment ago is found. Writes through this process drop the
    app's snapshot; writes through another instance show after at most ``ttl_s``.

    At most ``max_users`` users are kept, all apps together (an app larger than that
    is never kept); the least recently used snapshots make room.
    """

    def __init__(self, ttl_s: float = 5.0, max_users: int = 200_000) -> None:
        self._snapshots: TTLCache[str, dict[str, User]] = TTLCache(
            maxsize=max_users, ttl=ttl_s, getsizeof=len
        )
        self._locks: dict[str, asyncio.Lock] = {}

    def fresh(self, app_id: str) -> dict[str, User] | None:
        return self._snapshots.get(app_id)

    def lock(self, app_id: str) -> asyncio.Lock:
        return self._locks.setdefault(app_id, asyncio.Lock())

    def keep(self, app_id: str, users: dict[str, User]) -> None:
        if len(users) <= self._snapshots.maxsize:
            self._snapshots[app_id] = users

    def drop(self, app_id: str) -> None:
        self._snapshots.pop(app_id, None)
