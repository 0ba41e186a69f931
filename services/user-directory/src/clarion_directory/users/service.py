"""Use cases of the user directory, and the repository port they need. Dependencies
come in as arguments; what the use cases publish is in ``announcements``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, JsonValue

from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.directory_lookups import LookupUsers
from clarion_shared.contracts.directory_replies import UsersResolved
from clarion_shared.contracts.users_events import PresenceChanged, UserDeleted, UserUpserted
from clarion_shared.ids import now
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger
from clarion_shared.public.users import UsersExist, UsersSelected

from .announcements import (
    UserChanges,
    UserEvents,
    announce,
    announce_changes,
    presence_of,
)
from .domain import (
    InvalidEvent,
    MetadataLimits,
    Status,
    UidAlreadyExists,
    User,
    UserNotFound,
    check_metadata,
    is_valid_uid,
    lookup_order,
    metadata_problem,
    resolved,
)
from .models import (
    ImportEntry,
    ImportFailure,
    ImportResult,
    UserCreate,
    UserUpdate,
    split_import,
)
from .query import UserQuery
from .roles import RoleIndex

log = get_logger(__name__)


# --- the repository port -------------------------------------------------------------


class Upsert(BaseModel):
    """Create the user ``uid`` or apply ``changes`` to it, as of ``at``.

    A user created by an upsert that names nobody is named after its uid (events may
    announce a user without a name).
    """

    model_config = ConfigDict(frozen=True)

    uid: str
    changes: UserUpdate
    at: int


UpsertOutcome = Literal["created", "updated", "failed"]


class UpsertResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: UpsertOutcome
    error: str | None = None


class UserPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    users: list[User]
    total: int


class UserRepository(RoleIndex, Resource, Protocol):
    """Where users are kept (Mongo in production, a dict in unit tests). ``start``
    prepares the storage (indexes)."""

    async def insert(self, user: User) -> None:
        """Store a new user; ``UidAlreadyExists`` when the uid is taken in the app."""
        ...

    async def get(self, app_id: str, uid: str) -> User | None: ...

    async def get_many(self, app_id: str, uids: Sequence[str]) -> list[User]:
        """The users among ``uids`` that exist, in any order."""
        ...

    async def search(self, app_id: str, query: UserQuery) -> UserPage: ...

    async def search_uids(self, app_id: str, query: UserQuery, limit: int) -> list[str]:
        """The uids of every page ``search`` lists for ``query``, in its order, at most
        ``limit`` of them (its page ignored): one read, not one per page."""
        ...

    async def update(
        self,
        app_id: str,
        uid: str,
        changes: UserUpdate,
        at: int,
        if_metadata: JsonObject | None = None,
    ) -> User | None:
        """Apply ``changes`` and stamp ``updated_at``; ``None`` when there is no such user,
        or (``if_metadata`` given) when its stored metadata is not ``if_metadata``."""
        ...

    async def delete(self, app_id: str, uid: str, not_after: int | None = None) -> bool:
        """Delete the user; with ``not_after``, only if it was not updated after it."""
        ...

    async def upsert_many(self, app_id: str, upserts: Sequence[Upsert]) -> list[UpsertResult]:
        """Apply every upsert in one bulk write; one result per upsert, in order."""
        ...

    async def upsert_if_newer(self, app_id: str, upsert: Upsert) -> bool:
        """Apply one upsert unless the stored user was updated after ``upsert.at``."""
        ...

    async def set_presence(self, app_id: str, uid: str, status: Status, at: int) -> bool:
        """Set status and ``last_active_at = at`` unless a later presence is stored."""
        ...


# --- HTTP ----------------------------------------------------------------------------


async def create_user(
    repo: UserRepository,
    events: UserEvents,
    user_changes: UserChanges,
    app_id: str,
    data: UserCreate,
    limits: MetadataLimits = MetadataLimits(),
) -> User:
    """Store a new user and announce it (``announce``). A uid already taken announces
    the user too before the 409: it may be the retry of a create whose announcement
    failed (503), and a dispatcher may still hold that uid as unknown."""
    check_metadata(data.metadata, limits)
    stamp = now()
    user = User(
        app_id=app_id,
        created_at=stamp,
        updated_at=stamp,
        last_active_at=stamp if data.gives_status else None,
        **data.model_dump(),
    )
    try:
        await repo.insert(user)
    except UidAlreadyExists:
        await announce_changes(user_changes, app_id, [user.uid])
        raise
    log.info("directory.user_created", app_id=app_id, uid=user.uid)
    presences = [presence_of(user)] if data.gives_status else []
    await announce(user_changes, events, app_id, [user.uid], presences)
    return user


async def get_user(repo: UserRepository, app_id: str, uid: str) -> User:
    user = await repo.get(app_id, uid) if is_valid_uid(uid) else None
    if user is None:
        raise UserNotFound(uid)
    return user


async def check_user(repo: UserRepository, app_id: str, uid: str) -> None:
    """``UserNotFound`` unless the user exists: one ``_id`` read, and nothing of the
    user goes back (the gateway asks before every feed request)."""
    await get_user(repo, app_id, uid)


async def update_user(
    repo: UserRepository,
    events: UserEvents,
    user_changes: UserChanges,
    app_id: str,
    uid: str,
    changes: UserUpdate,
    limits: MetadataLimits = MetadataLimits(),
) -> User:
    check_metadata(changes.metadata, limits)
    if changes.is_empty:
        return await get_user(repo, app_id, uid)
    user = await repo.update(app_id, uid, changes, now()) if is_valid_uid(uid) else None
    if user is None:
        raise UserNotFound(uid)
    log.info("directory.user_updated", app_id=app_id, uid=uid)
    presences = [presence_of(user)] if changes.status is not None else []
    await announce(user_changes, events, app_id, [uid], presences)
    return user


async def delete_user(
    repo: UserRepository, user_changes: UserChanges, app_id: str, uid: str
) -> None:
    """Delete the user and announce it (``announce_changes``). A user not found is
    announced too before the 404: it may be the retry of a delete whose announcement
    failed (503), and a dispatcher may still hold the deleted profile."""
    if not is_valid_uid(uid):
        raise UserNotFound(uid)
    deleted = await repo.delete(app_id, uid)
    if deleted:
        log.info("directory.user_deleted", app_id=app_id, uid=uid)
    await announce_changes(user_changes, app_id, [uid])
    if not deleted:
        raise UserNotFound(uid)


async def list_users(repo: UserRepository, app_id: str, query: UserQuery) -> UserPage:
    return await repo.search(app_id, query)


async def users_exist(repo: UserRepository, app_id: str, uids: Sequence[str]) -> UsersExist:
    """Which of ``uids`` are users of the app, in one bulk read (``get_many`` picks how
    to read that many); a uid that cannot exist is missing without a read."""
    asked = list(dict.fromkeys(uids))
    valid, _ = lookup_order(asked)
    found = {user.uid for user in await repo.get_many(app_id, valid)} if valid else set()
    return UsersExist(
        found=[uid for uid in asked if uid in found],
        missing=[uid for uid in asked if uid not in found],
    )


async def select_users(
    repo: UserRepository, app_id: str, query: UserQuery, limit: int
) -> UsersSelected:
    """The first ``limit`` uids of the users list for ``query``, all pages; one more is
    read to tell whether others match."""
    uids = await repo.search_uids(app_id, query, limit + 1)
    return UsersSelected(uids=uids[:limit], more=len(uids) > limit)


async def import_users(  # long: parse, check, upsert, count, announce: one import
    repo: UserRepository,
    events: UserEvents,
    user_changes: UserChanges,
    app_id: str,
    entries: Sequence[JsonValue],
    limits: MetadataLimits = MetadataLimits(),
) -> ImportResult:
    """Upsert every valid entry in one bulk write; report the others by index. The
    users written are announced in one record (``announce``); the entries that give
    ``status`` are presence changes, announced with them."""
    parsed, failed = split_import(entries)
    valid: list[ImportEntry] = []
    for entry in parsed:
        problem = metadata_problem(entry.user.metadata, limits)
        if problem is None:
            valid.append(entry)
        else:
            failed.append(
                ImportFailure(
                    index=entry.index,
                    uid=entry.user.uid,
                    code="ERR_VALIDATION",
                    message=f"metadata: {problem}",
                )
            )
    stamp = now()
    upserts = [Upsert(uid=e.user.uid, changes=e.user.as_changes(), at=stamp) for e in valid]
    results = await repo.upsert_many(app_id, upserts) if upserts else []
    created = updated = 0
    presences: list[PresenceChanged] = []
    for entry, result in zip(valid, results, strict=True):
        if result.outcome != "failed" and entry.user.gives_status:
            presences.append(
                PresenceChanged(
                    app_id=app_id, uid=entry.user.uid, status=entry.user.status, occurred_at=stamp
                )
            )
        if result.outcome == "created":
            created += 1
        elif result.outcome == "updated":
            updated += 1
        else:
            failed.append(
                ImportFailure(
                    index=entry.index,
                    uid=entry.user.uid,
                    code="ERR_INTERNAL",
                    message=result.error or "could not be stored",
                )
            )
    failed.sort(key=lambda f: f.index)
    log.info(
        "directory.users_imported",
        app_id=app_id,
        created=created,
        updated=updated,
        failed=len(failed),
    )
    await announce(user_changes, events, app_id, [u.uid for u in upserts], presences)
    return ImportResult(created=created, updated=updated, failed=failed)


# --- Kafka ---------------------------------------------------------------------------


async def resolve_users(repo: UserRepository, lookup: LookupUsers) -> UsersResolved:
    """Answer a lookup: every requested uid is either in ``users`` or in ``missing``."""
    [reply] = await resolve_many(repo, [lookup])
    return reply


async def resolve_many(repo: UserRepository, lookups: Sequence[LookupUsers]) -> list[UsersResolved]:
    """Answer lookups together: one repository read per app for all its lookups.

    On FerretDB every read of the collection costs a scan of it, so the lookups of
    one Kafka fetch share the read instead of paying it each.
    """
    started = time.perf_counter()
    wanted: dict[str, dict[str, None]] = {}
    for lookup in lookups:
        valid, _ = lookup_order(lookup.uids)
        wanted.setdefault(lookup.app_id, {}).update(dict.fromkeys(valid))
    apps = [app_id for app_id, uids in wanted.items() if uids]
    found = await asyncio.gather(*(repo.get_many(app_id, list(wanted[app_id])) for app_id in apps))
    users_by_app: dict[str, list[User]] = dict(zip(apps, found, strict=True))
    replies = [
        resolved(lookup.request_id, lookup.app_id, lookup.uids, users_by_app.get(lookup.app_id, []))
        for lookup in lookups
    ]
    log.info(
        "directory.lookups_resolved",
        lookups=len(lookups),
        apps=len(wanted),
        requested=sum(len(lookup.uids) for lookup in lookups),
        found=sum(len(reply.users) for reply in replies),
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return replies


async def apply_user_event(
    repo: UserRepository,
    event: UserUpserted | UserDeleted | PresenceChanged,
    limits: MetadataLimits = MetadataLimits(),
) -> None:
    """Apply an event idempotently; an event older than what is stored changes nothing.

    ``InvalidEvent`` (and a validation error of the announced changes) when the event
    can never apply.
    """
    if not is_valid_uid(event.uid):
        raise InvalidEvent(f"invalid uid {event.uid!r}")
    if isinstance(event, UserUpserted):
        changes = UserUpdate.announced_by(event)
        problem = metadata_problem(changes.metadata, limits) if changes.metadata else None
        if problem is not None:
            raise InvalidEvent(f"metadata: {problem}")
        upsert = Upsert(uid=event.uid, changes=changes, at=event.occurred_at)
        applied = await repo.upsert_if_newer(event.app_id, upsert)
    elif isinstance(event, UserDeleted):
        applied = await repo.delete(event.app_id, event.uid, not_after=event.occurred_at)
    else:
        applied = await repo.set_presence(event.app_id, event.uid, event.status, event.occurred_at)
    log.info(
        "directory.user_event_applied" if applied else "directory.user_event_skipped",
        app_id=event.app_id,
        uid=event.uid,
        event_type=event.type,
        occurred_at=event.occurred_at,
    )
