"""Users and the rules about them: what a valid user is, how a lookup is answered, and
the errors a rule raises. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints
from pydantic_core import to_json

from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.directory_replies import UserProfile, UsersResolved
from clarion_shared.contracts.users_changes import MAX_CHANGED_UIDS, UsersChanged
from clarion_shared.errors import DomainError, Invalid, Unavailable

UID_MAX_LENGTH = 100
UID_PATTERN = r"^[A-Za-z0-9_-]+$"
_UID_RE = re.compile(UID_PATTERN)
DEFAULT_ROLE = "default"
MAX_IMPORT = 1000
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
PRIVATE_KEY = "@private"

Status = Literal["online", "offline"]
SearchField = Literal["uid", "name"]

Uid = Annotated[
    str, StringConstraints(min_length=1, max_length=UID_MAX_LENGTH, pattern=UID_PATTERN)
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Role = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Url = Annotated[str, StringConstraints(max_length=2048)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Tags = Annotated[list[Tag], Field(max_length=100)]


def is_valid_uid(uid: str) -> bool:
    return 0 < len(uid) <= UID_MAX_LENGTH and _UID_RE.match(uid) is not None


# --- errors ------------------------------------------------------------------------


class UserNotFound(DomainError):
    """No user with this uid in the app (a uid that cannot exist included)."""

    def __init__(self, uid: str) -> None:
        super().__init__(
            "The user does not exist.", dev_message=f"No user with uid {uid!r} in this app."
        )
        self.uid = uid


class UidAlreadyExists(DomainError):
    """The uid is taken in the app (raised by ``UserRepository.insert``)."""

    def __init__(self, uid: str) -> None:
        super().__init__(
            "A user with this uid already exists.",
            dev_message=f"The uid {uid!r} is already taken in this app.",
        )
        self.uid = uid


class InvalidEvent(Invalid):
    """An event that can never be applied (it is dead-lettered)."""


class PresenceNotPropagated(Unavailable):
    """The presence change is stored, but its user event was not published: the
    client's retry stores the same change again and publishes it."""

    def __init__(self, uids: Sequence[str]) -> None:
        super().__init__(
            "The presence change was saved but could not be announced; send it again.",
            details={"uids": list(uids)[:20]},
        )


class ChangesNotPropagated(Unavailable):
    """The write is stored, but the record saying which users changed was not published
    (the dispatchers' caches may still hold the old profiles): the client's retry
    stores the same write again and publishes it."""

    def __init__(self, uids: Sequence[str]) -> None:
        super().__init__(
            "The change was saved but could not be announced; send it again.",
            details={"uids": list(uids)[:20]},
        )


def users_changed(app_id: str, uids: Sequence[str], at: int) -> list[UsersChanged]:
    """The records that say ``uids`` of ``app_id`` changed: each uid once, in records
    of at most ``MAX_CHANGED_UIDS``; none for no uid."""
    unique = list(dict.fromkeys(uids))
    return [
        UsersChanged(app_id=app_id, uids=unique[i : i + MAX_CHANGED_UIDS], occurred_at=at)
        for i in range(0, len(unique), MAX_CHANGED_UIDS)
    ]


# --- users -------------------------------------------------------------------------


@dataclass(frozen=True)
class MetadataLimits:
    """How large a user's ``metadata`` may be: its compact JSON in bytes, and its keys
    counted in every object at any depth (a nested object is no way around the count).
    A user is read whole by every list page and lookup that holds it."""

    max_bytes: int = 32 * 1024
    max_keys: int = 512


def count_keys(value: JsonValue, stop_after: int) -> int:
    """The keys of every object in ``value``; counting stops once past ``stop_after``."""
    count = 0
    pending: list[JsonValue] = [value]
    while pending and count <= stop_after:
        item = pending.pop()
        if isinstance(item, dict):
            count += len(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return count


def metadata_problem(metadata: JsonObject, limits: MetadataLimits) -> str | None:
    """Why ``metadata`` is over ``limits``, or None."""
    keys = count_keys(metadata, limits.max_keys)
    if keys > limits.max_keys:
        return f"more than {limits.max_keys} keys (objects at any depth count)"
    size = len(to_json(metadata))
    if size > limits.max_bytes:
        return f"{size} bytes as JSON, over the limit of {limits.max_bytes}"
    return None


def check_metadata(metadata: JsonObject | None, limits: MetadataLimits) -> None:
    """``Invalid`` naming ``metadata`` when it is over ``limits``."""
    problem = metadata_problem(metadata, limits) if metadata is not None else None
    if problem is not None:
        raise Invalid(
            "The user's metadata is too large.",
            dev_message=f"{problem} (metadata)",
            details=[{"field": "metadata", "message": problem}],
        )


def check_private(metadata: JsonObject) -> JsonObject:
    """``metadata["@private"]`` holds contact points the dispatcher delivers to, so its
    shape is checked; the rest of the metadata is free JSON."""
    private = metadata.get(PRIVATE_KEY)
    if private is None:
        return metadata
    if not isinstance(private, dict):
        raise ValueError(f"metadata.{PRIVATE_KEY} must be an object")
    for key in ("email", "contactNumber"):
        value = private.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"metadata.{PRIVATE_KEY}.{key} must be a string")
    tokens = private.get("pushTokens")
    if tokens is not None and not isinstance(tokens, list):
        raise ValueError(f"metadata.{PRIVATE_KEY}.pushTokens must be a list")
    return metadata


def without_push_tokens(metadata: JsonObject, tokens: frozenset[str]) -> JsonObject | None:
    """``metadata`` without the entries of ``metadata["@private"]["pushTokens"]`` whose
    token is one of ``tokens`` (an entry is ``{token, platform}``, or a bare token);
    None when it holds none of them. Every other entry and key is kept as it is."""
    private = metadata.get(PRIVATE_KEY)
    listed = private.get("pushTokens") if isinstance(private, dict) else None
    if not isinstance(private, dict) or not isinstance(listed, list):
        return None

    def refused(entry: JsonValue) -> bool:
        token = entry.get("token") if isinstance(entry, dict) else entry
        return isinstance(token, str) and token in tokens

    kept = [entry for entry in listed if not refused(entry)]
    if len(kept) == len(listed):
        return None
    return {**metadata, PRIVATE_KEY: {**private, "pushTokens": kept}}


class User(BaseModel):
    """A user as the directory stores it (one app's user)."""

    model_config = ConfigDict(frozen=True)

    app_id: str
    uid: str
    name: str
    avatar: str | None = None
    link: str | None = None
    role: str = DEFAULT_ROLE
    metadata: JsonObject = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    status: Status = "offline"
    last_active_at: int | None = None
    created_at: int
    updated_at: int

    def profile(self) -> UserProfile:
        return UserProfile(
            uid=self.uid,
            name=self.name,
            avatar=self.avatar,
            link=self.link,
            role=self.role,
            status=self.status,
            tags=self.tags,
            metadata=self.metadata,
        )


# --- lookups -----------------------------------------------------------------------

# A reply is one Kafka record; brokers refuse records above ~1 MB by default.
REPLY_BUDGET_BYTES = 900_000


def lookup_order(uids: Sequence[str]) -> tuple[list[str], list[str]]:
    """The uids to look up (valid, first occurrence) and those that cannot exist."""
    seen: set[str] = set()
    valid: list[str] = []
    invalid: list[str] = []
    for uid in uids:
        if uid in seen:
            continue
        seen.add(uid)
        (valid if is_valid_uid(uid) else invalid).append(uid)
    return valid, invalid


def resolved(
    request_id: str, app_id: str, requested: Sequence[str], found: Sequence[User]
) -> UsersResolved:
    """The reply to a lookup: profiles found, in request order, and the uids missing.

    A repeated uid is answered once. When the profiles would not fit in one record,
    metadata is cut down to its ``@private`` contact points (what delivery needs), then,
    if that is not enough, avatar, link and tags are left out too. ``@private`` itself
    is never cut, so 1,000 users whose contact points weigh ~900 bytes each can still
    exceed the budget.
    """
    by_uid = {user.uid: user for user in found}
    users: list[UserProfile] = []
    missing: list[str] = []
    for uid in dict.fromkeys(requested):
        user = by_uid.get(uid)
        if user is None:
            missing.append(uid)
        else:
            users.append(user.profile())
    reply = UsersResolved(request_id=request_id, app_id=app_id, users=users, missing=missing)
    if len(reply.to_bytes()) <= REPLY_BUDGET_BYTES:
        return reply
    trimmed = [
        profile.model_copy(update={"metadata": _private_only(profile.metadata)})
        for profile in users
    ]
    reply = reply.model_copy(update={"users": trimmed})
    if len(reply.to_bytes()) <= REPLY_BUDGET_BYTES:
        return reply
    # Still too large (long avatars, links, many tags): keep what delivery reads.
    bare = [
        profile.model_copy(update={"avatar": None, "link": None, "tags": []}) for profile in trimmed
    ]
    return reply.model_copy(update={"users": bare})


def _private_only(metadata: JsonObject) -> JsonObject:
    private = metadata.get(PRIVATE_KEY)
    return {PRIVATE_KEY: private} if private is not None else {}
