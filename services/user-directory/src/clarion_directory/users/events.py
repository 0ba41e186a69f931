"""Use cases of ``clarion.users.events``, a fetch at a time: the events applied in order,
then the users they named announced once per app (``clarion.users.changes``).

Push tokens a provider refused (``PushTokensInvalid``, from the delivery workers) are
removed in bulk: the refusals of a fetch are gathered until another event of one of
their users comes (so each user's events still apply in the order they came), then
their users are read with one read per app, and only those still holding a refused
token are written, each in one conditional update of its metadata.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from clarion_shared.contracts.users_events import AnyUserEvent, PushTokensInvalid
from clarion_shared.ids import now
from clarion_shared.logging import get_logger

from .announcements import UserChanges
from .domain import MetadataLimits, User, is_valid_uid, users_changed, without_push_tokens
from .models import UserUpdate
from .service import UserRepository, apply_user_event

log = get_logger(__name__)

# Metadata writes in flight at once: on FerretDB 1.24 each holds up to two PostgreSQL
# connections until it ends (see ``mongo.MongoUserRepository._upsert_each``).
WRITES_AT_ONCE = 4
# Reads and writes of one user when its metadata keeps changing under the removal (a
# client saving its own new token at that moment); then the refusal is left.
ATTEMPTS = 3

UserKey = tuple[str, str]


async def apply_user_events(
    repo: UserRepository,
    user_changes: UserChanges,
    events: Sequence[AnyUserEvent],
    limits: MetadataLimits = MetadataLimits(),
) -> None:
    """Apply the events of one fetch in order (``service.apply_user_event``; refused push
    tokens together, ``remove_push_tokens``), then say once per app which users they
    named.

    Stale events are named too: one may be the redelivery of an event applied before
    its announcement failed. ``PublishFailed`` when the broker does not take the
    records: the caller has the events delivered again (applying them again is a
    no-op).
    """
    named: dict[str, dict[str, None]] = {}
    refusals: list[PushTokensInvalid] = []
    refused: set[UserKey] = set()
    for event in events:
        key = (event.app_id, event.uid)
        if isinstance(event, PushTokensInvalid):
            refusals.append(event)
            refused.add(key)
        else:
            if key in refused:
                await remove_push_tokens(repo, refusals)
                refusals, refused = [], set()
            await apply_user_event(repo, event, limits)
        named.setdefault(event.app_id, {})[event.uid] = None
    await remove_push_tokens(repo, refusals)
    at = now()
    records = [
        record for app_id, uids in named.items() for record in users_changed(app_id, list(uids), at)
    ]
    if records:
        await user_changes.users_changed(records)


@dataclass(frozen=True)
class Refusal:
    """What a fetch's refusals ask of one user: the tokens to remove, as of ``at``."""

    tokens: frozenset[str]
    at: int


def refusals_per_user(events: Sequence[PushTokensInvalid]) -> dict[UserKey, Refusal]:
    """Each user's refused tokens together, as of the latest refusal; a uid that cannot
    exist is no user's."""
    found: dict[UserKey, Refusal] = {}
    for event in events:
        if not is_valid_uid(event.uid):
            continue
        key = (event.app_id, event.uid)
        held = found.get(key, Refusal(frozenset(), event.occurred_at))
        found[key] = Refusal(held.tokens | set(event.tokens), max(held.at, event.occurred_at))
    return found


async def remove_push_tokens(repo: UserRepository, events: Sequence[PushTokensInvalid]) -> int:
    """Remove the refused tokens from their users' ``metadata["@private"]["pushTokens"]``;
    how many users changed. A user that does not exist, or holds none of its refused
    tokens, is left alone (a redelivered refusal changes nothing). A user's
    ``updatedAt`` becomes the refusal's time, never earlier than it was."""
    wanted = refusals_per_user(events)
    if not wanted:
        return 0
    apps: dict[str, list[str]] = {}
    for app_id, uid in wanted:
        apps.setdefault(app_id, []).append(uid)
    read = await asyncio.gather(*(repo.get_many(app, uids) for app, uids in apps.items()))
    gate = asyncio.Semaphore(WRITES_AT_ONCE)

    async def remove(user: User) -> bool:
        async with gate:
            return await _remove_from(repo, user, wanted[(user.app_id, user.uid)])

    changed = await asyncio.gather(*(remove(user) for users in read for user in users))
    log.info(
        "directory.push_tokens_removed",
        refusals=len(events),
        users=len(wanted),
        changed=sum(changed),
    )
    return sum(changed)


async def _remove_from(repo: UserRepository, user: User, refusal: Refusal) -> bool:
    """One user's removal: written only if its metadata is still the one read, else read
    again and retried (``ATTEMPTS`` in all)."""
    app_id, uid = user.app_id, user.uid
    current: User | None = user
    for _ in range(ATTEMPTS):
        if current is None:
            return False
        kept = without_push_tokens(current.metadata, refusal.tokens)
        if kept is None:
            return False
        at = max(current.updated_at, refusal.at)
        changes = UserUpdate(metadata=kept)
        if await repo.update(app_id, uid, changes, at, if_metadata=current.metadata):
            return True
        current = await repo.get(app_id, uid)
    log.warning("directory.push_tokens_not_removed", app_id=app_id, uid=uid, attempts=ATTEMPTS)
    return False
