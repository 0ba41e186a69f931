"""What the directory tells other services once a write is stored, and the ports it
publishes through: which users changed (``clarion.users.changes``, for the dispatchers'
caches of profiles) and presence changes (``clarion.users.events``, as other services
announce theirs). The use cases call these before they answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from clarion_shared.contracts.users_changes import UsersChanged
from clarion_shared.contracts.users_events import PresenceChanged
from clarion_shared.ids import now
from clarion_shared.logging import get_logger

from .domain import ChangesNotPropagated, PresenceNotPropagated, User, users_changed

log = get_logger(__name__)


# --- the ports -------------------------------------------------------------------------


class PublishFailed(Exception):
    """The broker did not take the records (the publishers' own error)."""


class UserEvents(Protocol):
    """Where the directory announces what its HTTP API changed, as other services
    announce theirs: ``clarion.users.events``, keyed ``app_id:uid``."""

    async def presence_changed(self, events: Sequence[PresenceChanged]) -> None:
        """Publish every event and wait for the broker; ``PublishFailed`` otherwise."""
        ...


class UserChanges(Protocol):
    """Where the directory says which users a write call changed, once it is stored:
    ``clarion.users.changes``, keyed by app. Every dispatcher drops those users from its
    cache of profiles. One record per call (or per 1,000 uids), never one per user."""

    async def users_changed(self, changes: Sequence[UsersChanged]) -> None:
        """Publish every record and wait for the broker; ``PublishFailed`` otherwise."""
        ...


# --- what a write call publishes ------------------------------------------------------


async def announce(
    user_changes: UserChanges,
    events: UserEvents,
    app_id: str,
    uids: Sequence[str],
    presences: Sequence[PresenceChanged] = (),
) -> None:
    """Publish what a write call stored, before it answers: which users it changed, and
    the presence changes among them, at once.

    When the broker does not take them the caller gets a 503 (``ChangesNotPropagated``
    or ``PresenceNotPropagated``): the write is stored, and the client's retry stores it
    again (a no-op) and publishes. Until then a dispatcher may answer from the profile
    it had (for its cache's TTL at most).
    """
    outcomes = await asyncio.gather(
        announce_changes(user_changes, app_id, uids),
        announce_presence(events, presences),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


async def announce_changes(user_changes: UserChanges, app_id: str, uids: Sequence[str]) -> None:
    """Say which users of ``app_id`` a write call changed; ``ChangesNotPropagated``
    (503) when the broker does not take it."""
    records = users_changed(app_id, uids, now())
    if not records:
        return
    try:
        await user_changes.users_changed(records)
    except PublishFailed as exc:
        log.warning(
            "directory.changes_not_published", app_id=app_id, count=len(uids), error=str(exc)
        )
        raise ChangesNotPropagated(uids) from exc


async def announce_presence(events: UserEvents, changes: Sequence[PresenceChanged]) -> None:
    """Publish presence changes already stored. When the broker does not take them the
    caller gets ``PresenceNotPropagated`` (503): its retry stores the same change again,
    a no-op, and publishes it; the directory's own consumer of the topic applies it
    again, a no-op too (a presence is applied unless a later one is stored)."""
    if not changes:
        return
    try:
        await events.presence_changed(changes)
    except PublishFailed as exc:
        log.warning("directory.presence_not_published", count=len(changes), error=str(exc))
        raise PresenceNotPropagated([change.uid for change in changes]) from exc


def presence_of(user: User) -> PresenceChanged:
    """The user event for the presence ``user`` now has, as of its ``last_active_at``."""
    return PresenceChanged(
        app_id=user.app_id,
        uid=user.uid,
        status=user.status,
        occurred_at=user.last_active_at or user.updated_at,
    )
