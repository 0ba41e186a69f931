"""The users API's answers and requests (owned by the user-directory, forwarded by the
gateway)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, JsonValue, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from ..api import ApiModel
from ..contracts.base import JsonObject

UserStatus = Literal["online", "offline"]


class UserPublic(ApiModel):
    """A user as the public API shows it (camelCase, Unix seconds, null when absent)."""

    model_config = ConfigDict(frozen=True)

    uid: str
    name: str
    avatar: str | None
    link: str | None
    role: str
    metadata: JsonObject
    tags: list[str]
    status: UserStatus
    last_active_at: int | None
    created_at: int
    updated_at: int


class ImportFailure(ApiModel):
    model_config = ConfigDict(frozen=True)

    index: int
    uid: str | None
    code: str
    message: str


class ImportResult(ApiModel):
    """``POST /v3/users/import`` answer: how many were created and updated, and the
    entries that failed, by index."""

    model_config = ConfigDict(frozen=True)

    created: int
    updated: int
    failed: list[ImportFailure]


# The requests' shapes, as the user-directory parses them (``clarion_directory.users``):
# the gateway forwards the bodies unparsed and documents them with these.
UID_PATTERN = r"^[A-Za-z0-9_-]+$"
UID_MAX_LENGTH = 100
MAX_IMPORT = 1000

Uid = Annotated[
    str, StringConstraints(min_length=1, max_length=UID_MAX_LENGTH, pattern=UID_PATTERN)
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Role = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Url = Annotated[str, StringConstraints(max_length=2048)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Tags = Annotated[list[Tag], Field(max_length=100)]


# Fields a client may send that Clarion accepts and ignores (API.md: never a 400), and
# why; each is documented on the request body as such. Any other unknown field is
# ignored too.
IGNORED_ON_CREATE: dict[str, str] = {
    "withAuthToken": "Clarion issues no chat auth tokens (CometChat's users API does)",
    "statusMessage": "Clarion keeps no status message",
    "lastActiveAt": "set by Clarion when the presence (status) changes",
    "createdAt": "set by Clarion",
    "updatedAt": "set by Clarion",
}
IGNORED_ON_UPDATE: dict[str, str] = {
    "uid": "the path names the user; a uid never changes",
    "statusMessage": "Clarion keeps no status message",
    "lastActiveAt": "set by Clarion when the presence (status) changes",
    "createdAt": "set by Clarion",
    "updatedAt": "set by Clarion",
}
IGNORED_NOTE = "Accepted and ignored"
_STATUS = (
    "Presence: `online` or `offline`. Giving it is a presence change: it sets `lastActiveAt` "
    "and is published as a `presence_changed` user event (`clarion.users.events`), as "
    "other services announce theirs."
)


def ignored_fields_schema(
    reasons: dict[str, str], examples: list[JsonValue] | None = None
) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` documenting the accepted-and-ignored fields as properties
    of the body (any value; described as ignored, with why)."""

    def document(schema: dict[str, Any]) -> None:
        properties = schema.setdefault("properties", {})
        for name, why in reasons.items():
            properties[name] = {"description": f"{IGNORED_NOTE}: {why}."}
        if examples is not None:
            schema["examples"] = examples

    return document


class UserCreate(ApiModel):
    """``POST /v3/users`` body (and one entry of an import). ``metadata["@private"]``
    holds contact points (``email``, ``contactNumber``, ``pushTokens``). Fields marked
    "Accepted and ignored", and any other field not listed, are accepted and ignored."""

    model_config = ConfigDict(
        json_schema_extra=ignored_fields_schema(
            IGNORED_ON_CREATE, [{"uid": "alice", "name": "Alice"}]
        )
    )

    uid: Uid
    name: Name
    avatar: Url | None = None
    link: Url | None = None
    role: Role = "default"
    metadata: JsonObject = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)
    status: UserStatus = Field(default="offline", description=_STATUS)


UnsetField = Literal["avatar", "link", "role", "metadata", "tags", "statusMessage"]


class UserUpdate(ApiModel):
    """``PUT /v3/users/{uid}`` body: only the fields given change; ``null`` clears
    ``avatar``, ``link``, ``metadata`` and ``tags`` and resets ``role`` (never ``name``
    or ``status``). Fields marked "Accepted and ignored" and any other unknown field are
    accepted and ignored."""

    model_config = ConfigDict(json_schema_extra=ignored_fields_schema(IGNORED_ON_UPDATE))

    name: Name | None = None
    avatar: Url | None = None
    link: Url | None = None
    role: Role | None = None
    metadata: JsonObject | None = None
    tags: Tags | None = None
    status: UserStatus | SkipJsonSchema[None] = Field(default=None, description=_STATUS)
    unset: list[UnsetField] | SkipJsonSchema[None] = Field(
        default=None,
        description="CometChat's way to clear fields: each one named is as if given as "
        "`null` (`statusMessage`: nothing to clear, Clarion keeps none). Another name is 400.",
    )


class UserImport(ApiModel):
    """``POST /v3/users/import`` body: each entry a ``UserCreate``, validated one by one
    (a bad entry is reported with its index in ``failed``)."""

    users: list[JsonValue] = Field(min_length=1, max_length=MAX_IMPORT)


# Campaign audiences: the gateway's two questions to the user-directory
# (``/internal/apps/{app}/audiences/exist`` and ``.../audiences/select``).
MAX_AUDIENCE = 10_000
"""A campaign's recipients at most (API.md, Campaigns)."""


def _listed(value: object) -> object:
    return [value] if isinstance(value, str) else value


# A list of strings, or one string (``"a,b"``): each string may hold a comma list.
CommaList = Annotated[list[str], BeforeValidator(_listed, json_schema_input_type=str | list[str])]


class UsersExistRequest(ApiModel):
    """``POST /internal/apps/{app}/audiences/exist`` body: which of these uids are users of
    the app. Any string is accepted: one that is not a valid uid is simply missing."""

    model_config = ConfigDict(frozen=True)

    uids: list[str] = Field(min_length=1, max_length=MAX_AUDIENCE)


class UsersExist(ApiModel):
    """Its answer: every uid asked is in exactly one list, once, in the order asked."""

    model_config = ConfigDict(frozen=True)

    found: list[str]
    missing: list[str]


class UsersFilter(ApiModel):
    """The users list's filters (``GET /v3/users`` without ``page`` and ``perPage``) as
    a JSON object. Each means what the same query parameter means to the list (the
    user-directory parses both the same way: comma lists or arrays, ``status:
    available``, ``searchIn: both``), so a filter selects the users the list shows.

    An unknown field is refused rather than ignored: a misspelt filter would otherwise
    select every user of the app."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    search_key: str | None = Field(default=None, description="Prefix of uid or name.")
    search_in: CommaList | None = Field(default=None, description="uid, name or both.")
    role: CommaList | None = None
    roles: CommaList | None = None
    status: str | None = Field(default=None, description="online (or available), offline.")
    created_after: int | None = Field(default=None, description="Unix seconds, inclusive.")
    created_before: int | None = Field(default=None, description="Unix seconds, inclusive.")
    tags: CommaList | None = Field(default=None, description="Any of these tags.")


class UsersSelectRequest(ApiModel):
    """``POST /internal/apps/{app}/audiences/select`` body: the users ``filter`` selects,
    the first ``limit`` of them. One more than an audience holds may be asked, to tell
    an audience that is too large."""

    model_config = ConfigDict(frozen=True)

    filter: UsersFilter
    limit: int = Field(ge=1, le=MAX_AUDIENCE + 1)


class UsersSelected(ApiModel):
    """Its answer: the uids, in the users list's order (``createdAt``, then ``uid``),
    and whether more users match than were given."""

    model_config = ConfigDict(frozen=True)

    uids: list[str]
    more: bool
