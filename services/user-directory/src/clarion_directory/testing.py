"""In-memory fakes of the directory's ports, with the adapters' behaviour, for tests.

``InMemoryUserRepository`` is held to the same test suite as the Mongo repository, so
the unit tests that trust it test what production does. Production code never
imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.users_changes import UsersChanged
from clarion_shared.contracts.users_events import PresenceChanged

from .app import Adapters, Settings
from .users.announcements import PublishFailed
from .users.domain import DEFAULT_ROLE, Status, UidAlreadyExists, User
from .users.models import UserUpdate
from .users.query import UserQuery
from .users.service import Upsert, UpsertResult, UserPage


class InMemoryUserRepository:
    """``UserRepository`` in a dict, with the semantics of the Mongo repository."""

    def __init__(self) -> None:
        self.users: dict[tuple[str, str], User] = {}
        self.get_many_calls = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def insert(self, user: User) -> None:
        if (user.app_id, user.uid) in self.users:
            raise UidAlreadyExists(user.uid)
        self.users[(user.app_id, user.uid)] = user

    async def get(self, app_id: str, uid: str) -> User | None:
        return self.users.get((app_id, uid))

    async def get_many(self, app_id: str, uids: Sequence[str]) -> list[User]:
        self.get_many_calls += 1
        return [self.users[(app_id, uid)] for uid in uids if (app_id, uid) in self.users]

    async def search(self, app_id: str, query: UserQuery) -> UserPage:
        found = self._listed(app_id, query)
        return UserPage(users=found[query.offset : query.offset + query.per_page], total=len(found))

    async def roles(self, app_id: str, limit: int) -> list[str]:
        return sorted({u.role for (app, _), u in self.users.items() if app == app_id})[:limit]

    async def search_uids(self, app_id: str, query: UserQuery, limit: int) -> list[str]:
        return [user.uid for user in self._listed(app_id, query)[:limit]]

    def _listed(self, app_id: str, query: UserQuery) -> list[User]:
        """Every user of the app ``query`` lists, in the list's order (all pages)."""
        return sorted(
            (u for (app, _), u in self.users.items() if app == app_id and query.matches(u)),
            key=UserQuery.sort_key,
        )

    async def update(
        self,
        app_id: str,
        uid: str,
        changes: UserUpdate,
        at: int,
        if_metadata: JsonObject | None = None,
    ) -> User | None:
        user = self.users.get((app_id, uid))
        if user is None or (if_metadata is not None and user.metadata != if_metadata):
            return None
        updated = _apply(user, changes, at)
        self.users[(app_id, uid)] = updated
        return updated

    async def delete(self, app_id: str, uid: str, not_after: int | None = None) -> bool:
        user = self.users.get((app_id, uid))
        if user is None or (not_after is not None and user.updated_at > not_after):
            return False
        del self.users[(app_id, uid)]
        return True

    async def upsert_many(self, app_id: str, upserts: Sequence[Upsert]) -> list[UpsertResult]:
        results = []
        for upsert in upserts:
            existing = self.users.get((app_id, upsert.uid))
            self.users[(app_id, upsert.uid)] = _upserted(app_id, existing, upsert)
            results.append(UpsertResult(outcome="updated" if existing else "created"))
        return results

    async def upsert_if_newer(self, app_id: str, upsert: Upsert) -> bool:
        existing = self.users.get((app_id, upsert.uid))
        if existing is not None and existing.updated_at > upsert.at:
            return False
        self.users[(app_id, upsert.uid)] = _upserted(app_id, existing, upsert)
        return True

    async def set_presence(self, app_id: str, uid: str, status: Status, at: int) -> bool:
        user = self.users.get((app_id, uid))
        if user is None or (user.last_active_at is not None and user.last_active_at > at):
            return False
        self.users[(app_id, uid)] = user.model_copy(update={"status": status, "last_active_at": at})
        return True


def _apply(user: User, changes: UserUpdate, at: int) -> User:
    values: dict[str, Any] = changes.model_dump(exclude_unset=True)
    if changes.status is not None:  # a presence change: as of ``at``
        values["last_active_at"] = at
    return user.model_copy(update={**values, "updated_at": at})


class RecordingUserEvents:
    """``UserEvents`` that keeps what it publishes; ``fail`` makes it refuse, as a
    broker that is down does."""

    def __init__(self) -> None:
        self.presences: list[PresenceChanged] = []
        self.fail = False

    async def presence_changed(self, events: Sequence[PresenceChanged]) -> None:
        if self.fail:
            raise PublishFailed("the broker is down (fake)")
        self.presences.extend(events)


class RecordingUserChanges:
    """``UserChanges`` that keeps what it publishes; ``fail`` makes it refuse, as a
    broker that is down does."""

    def __init__(self) -> None:
        self.changes: list[UsersChanged] = []
        self.fail = False

    async def users_changed(self, changes: Sequence[UsersChanged]) -> None:
        if self.fail:
            raise PublishFailed("the broker is down (fake)")
        self.changes.extend(changes)

    def uids(self, app_id: str | None = None) -> list[str]:
        """Every uid announced (of ``app_id``), in order, repeats included."""
        return [
            uid
            for change in self.changes
            if app_id is None or change.app_id == app_id
            for uid in change.uids
        ]


def _upserted(app_id: str, existing: User | None, upsert: Upsert) -> User:
    if existing is None:
        existing = User(
            app_id=app_id,
            uid=upsert.uid,
            name=upsert.uid,
            role=DEFAULT_ROLE,
            created_at=upsert.at,
            updated_at=upsert.at,
        )
    return _apply(existing, upsert.changes, upsert.at)


def in_memory(
    settings: Settings,
    users: InMemoryUserRepository | None = None,
    events: RecordingUserEvents | None = None,
    changes: RecordingUserChanges | None = None,
) -> Adapters:
    """The service's adapters with the fakes in place of the repository and the
    publishers (the broker and database clients are made, and never started)."""
    return replace(
        Adapters.connect(settings),
        users=InMemoryUserRepository() if users is None else users,
        events=RecordingUserEvents() if events is None else events,
        changes=RecordingUserChanges() if changes is None else changes,
    )
