"""Users and the rules about them: what a valid user is, how a list query filters and
sorts, what the HTTP models look like. Pure: no I/O.

The query semantics live here twice on purpose: ``UserQuery.matches`` and
``UserQuery.sort_key`` are the reference (the in-memory fake uses them), and the Mongo
adapter translates the same query into a filter; one test suite runs against both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.directory_replies import UserProfile, UsersResolved

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


class UserNotFound(Exception):
    def __init__(self, uid: str) -> None:
        super().__init__(uid)
        self.uid = uid


class UidAlreadyExists(Exception):
    def __init__(self, uid: str) -> None:
        super().__init__(uid)
        self.uid = uid


def _check_private(metadata: JsonObject) -> JsonObject:
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


# --- HTTP models -------------------------------------------------------------------


class UserCreate(BaseModel):
    """``POST /v3/users`` body (and one entry of an import). Unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    uid: Uid
    name: Name
    avatar: Url | None = None
    link: Url | None = None
    role: Role = DEFAULT_ROLE
    metadata: JsonObject = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)

    _check_metadata = field_validator("metadata")(_check_private)

    def as_changes(self) -> UserUpdate:
        """The fields the client gave, as changes to apply to an existing user."""
        return UserUpdate.model_validate(self.model_dump(exclude_unset=True, exclude={"uid"}))


class UserUpdate(BaseModel):
    """``PUT /v3/users/{uid}`` body: only the fields given change.

    ``null`` clears ``avatar`` and ``link``, empties ``metadata`` and ``tags`` and resets
    ``role`` to ``default``; a user always has a name, so ``name`` cannot be ``null``.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: Name | None = None
    avatar: Url | None = None
    link: Url | None = None
    role: Role | None = None
    metadata: JsonObject | None = None
    tags: Tags | None = None

    @field_validator("role")
    @classmethod
    def _null_role(cls, value: str | None) -> str:
        return DEFAULT_ROLE if value is None else value

    @field_validator("metadata")
    @classmethod
    def _null_metadata(cls, value: JsonObject | None) -> JsonObject:
        return {} if value is None else _check_private(value)

    @field_validator("tags")
    @classmethod
    def _null_tags(cls, value: list[str] | None) -> list[str]:
        return [] if value is None else value

    @model_validator(mode="after")
    def _name_not_null(self) -> Self:
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be null")
        return self

    @property
    def is_empty(self) -> bool:
        return not self.model_fields_set


class UserImport(BaseModel):
    """``POST /v3/users/import`` body. Entries are validated one by one, so a bad entry
    is reported with its index instead of failing the whole request."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    users: list[JsonValue] = Field(min_length=1, max_length=MAX_IMPORT)


class UserPublic(BaseModel):
    """A user as the public API shows it (camelCase, Unix seconds, null when absent)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    uid: str
    name: str
    avatar: str | None
    link: str | None
    role: str
    metadata: JsonObject
    tags: list[str]
    status: Status
    last_active_at: int | None
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, user: User) -> UserPublic:
        return cls.model_validate(user.model_dump(exclude={"app_id"}))

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class ImportFailure(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int
    uid: str | None
    code: str
    message: str


class ImportResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    created: int
    updated: int
    failed: list[ImportFailure]


class ImportEntry(BaseModel):
    """One valid import entry: its position in the request and the user it describes."""

    model_config = ConfigDict(frozen=True)

    index: int
    user: UserCreate


def validation_message(exc: ValidationError) -> str:
    """The first problem of a validation error, as ``field: message``."""
    errors = exc.errors()
    if not errors:
        return "invalid"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def split_import(raw: Sequence[JsonValue]) -> tuple[list[ImportEntry], list[ImportFailure]]:
    """Validate each import entry on its own.

    Invalid entries and repeats of a uid already seen in the same request are reported
    as failures with their index; nothing is dropped silently.
    """
    valid: list[ImportEntry] = []
    failed: list[ImportFailure] = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(raw):
        uid = item.get("uid") if isinstance(item, dict) else None
        uid_str = uid if isinstance(uid, str) else None
        if not isinstance(item, dict):
            failed.append(
                ImportFailure(
                    index=index, uid=None, code="ERR_VALIDATION", message="must be an object"
                )
            )
            continue
        try:
            user = UserCreate.model_validate(item)
        except ValidationError as exc:
            failed.append(
                ImportFailure(
                    index=index,
                    uid=uid_str,
                    code="ERR_VALIDATION",
                    message=validation_message(exc),
                )
            )
            continue
        if user.uid in first_index:
            failed.append(
                ImportFailure(
                    index=index,
                    uid=user.uid,
                    code="ERR_VALIDATION",
                    message=f"uid: repeats the entry at index {first_index[user.uid]}",
                )
            )
            continue
        first_index[user.uid] = index
        valid.append(ImportEntry(index=index, user=user))
    return valid, failed


# --- writes in bulk ----------------------------------------------------------------


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


# --- listing -----------------------------------------------------------------------


def _comma_list(value: object) -> object:
    """``a,b`` and repeated parameters (``?x=a&x=b``) both give ``[a, b]``."""
    if value is None:
        return []
    parts = [value] if isinstance(value, str) else value
    if not isinstance(parts, list | tuple):
        return value
    out: list[object] = []
    for part in parts:
        if isinstance(part, str):
            out.extend(p.strip() for p in part.split(",") if p.strip())
        else:
            out.append(part)
    return out


class UserQuery(BaseModel):
    """``GET /v3/users`` query parameters, validated and normalised."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    search_key: str | None = Field(default=None, alias="searchKey", max_length=100)
    search_in: tuple[SearchField, ...] = Field(default=("uid", "name"), alias="searchIn")
    role: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    status: Status | None = None
    created_after: int | None = Field(default=None, alias="createdAfter", ge=0)
    created_before: int | None = Field(default=None, alias="createdBefore", ge=0)
    tags: tuple[str, ...] = ()
    page: int = Field(default=1, ge=1, le=1_000_000)
    per_page: int = Field(default=DEFAULT_PER_PAGE, alias="perPage", ge=1, le=MAX_PER_PAGE)

    @field_validator("role", "roles", "tags", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _comma_list(value)

    @field_validator("search_in", mode="before")
    @classmethod
    def _search_in(cls, value: object) -> object:
        items = _comma_list(value)
        if not isinstance(items, list):
            return items
        fields: list[str] = []
        for item in items:
            lowered = item.lower() if isinstance(item, str) else item
            if lowered not in ("uid", "name", "both"):
                raise ValueError("searchIn must list uid, name or both")
            fields.extend(["uid", "name"] if lowered == "both" else [str(lowered)])
        return tuple(dict.fromkeys(fields)) or ("uid", "name")

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            value = value[-1] if value else None
        if isinstance(value, str):
            value = value.strip().lower()
            return {"": None, "available": "online"}.get(value, value)
        return value

    @field_validator("search_key", mode="before")
    @classmethod
    def _search_key(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip() or None
        return value

    @property
    def all_roles(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.role, *self.roles)))

    @property
    def search_prefix(self) -> str | None:
        """The lower-cased prefix that uid or name must start with."""
        return self.search_key.lower() if self.search_key else None

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def matches(self, user: User) -> bool:
        """Whether ``user`` is in the result (the reference semantics)."""
        prefix = self.search_prefix
        if prefix is not None:
            values = [user.uid if field == "uid" else user.name for field in self.search_in]
            if not any(value.lower().startswith(prefix) for value in values):
                return False
        roles = self.all_roles
        if roles and user.role not in roles:
            return False
        if self.status is not None and user.status != self.status:
            return False
        if self.created_after is not None and user.created_at < self.created_after:
            return False
        if self.created_before is not None and user.created_at > self.created_before:
            return False
        return not self.tags or any(tag in user.tags for tag in self.tags)

    @staticmethod
    def sort_key(user: User) -> tuple[int, str]:
        """Oldest first, then by uid: a total order, so pages are stable."""
        return (user.created_at, user.uid)


class UserPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    users: list[User]
    total: int


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
    metadata is cut down to its ``@private`` contact points (what delivery needs).
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
    return reply.model_copy(update={"users": trimmed})


def _private_only(metadata: JsonObject) -> JsonObject:
    private = metadata.get(PRIVATE_KEY)
    return {PRIVATE_KEY: private} if private is not None else {}


# --- events ------------------------------------------------------------------------


def event_changes(
    name: str | None,
    avatar: str | None,
    link: str | None,
    role: str | None,
    metadata: JsonObject | None,
    tags: list[str] | None,
) -> UserUpdate:
    """Changes announced by a ``user_upserted`` event: ``None`` means not announced."""
    given = {
        "name": name,
        "avatar": avatar,
        "link": link,
        "role": role,
        "metadata": metadata,
        "tags": tags,
    }
    return UserUpdate.model_validate({k: v for k, v in given.items() if v is not None})
