"""The users API's HTTP models, named by role (``UserCreate``, ``UserPublic``, ...), and
the parsing of an import body entry by entry.

The gateway forwards ``/v3/users`` here and passes the answer back as it is, so these
are the public API's shapes: camelCase on the wire, unknown request fields ignored. The
answers' shapes are ``clarion_shared.public.users``, which the gateway documents too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from clarion_shared.api import ApiModel
from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.users_events import UserUpserted
from clarion_shared.public import users as public
from clarion_shared.public.users import (
    IGNORED_ON_CREATE,
    IGNORED_ON_UPDATE,
    ImportFailure,
    ImportResult,
    UnsetField,
    ignored_fields_schema,
)

from .domain import (
    DEFAULT_ROLE,
    MAX_IMPORT,
    Name,
    Role,
    Status,
    Tags,
    Uid,
    Url,
    User,
    check_private,
)

__all__ = [
    "ImportEntry",
    "ImportFailure",
    "ImportResult",
    "UserCreate",
    "UserImport",
    "UserPublic",
    "UserUpdate",
    "split_import",
    "validation_message",
]


class UserCreate(ApiModel):
    """``POST /v3/users`` body (and one entry of an import). Unknown fields are ignored
    (``clarion_shared.public.users.IGNORED_USER_FIELDS`` documents the ones a client
    may send); a given ``status`` is a presence change, announced as a user event."""

    model_config = ConfigDict(
        frozen=True, json_schema_extra=ignored_fields_schema(IGNORED_ON_CREATE)
    )

    uid: Uid
    name: Name
    avatar: Url | None = None
    link: Url | None = None
    role: Role = DEFAULT_ROLE
    metadata: JsonObject = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)
    status: Status = "offline"

    @property
    def gives_status(self) -> bool:
        return "status" in self.model_fields_set

    _check_metadata = field_validator("metadata")(check_private)

    def as_changes(self) -> UserUpdate:
        """The fields the client gave, as changes to apply to an existing user."""
        return UserUpdate.model_validate(self.model_dump(exclude_unset=True, exclude={"uid"}))


class UserUpdate(ApiModel):
    """``PUT /v3/users/{uid}`` body: only the fields given change.

    ``null`` clears ``avatar`` and ``link``, empties ``metadata`` and ``tags`` and resets
    ``role`` to ``default``; a user always has a name and a presence, so ``name`` and
    ``status`` cannot be ``null``. CometChat's ``unset: [field, ...]`` is the same as
    ``null`` for each field it names. ``status`` is a presence change: it sets
    ``lastActiveAt`` too and is announced as a user event.
    """

    model_config = ConfigDict(
        frozen=True, json_schema_extra=ignored_fields_schema(IGNORED_ON_UPDATE)
    )

    name: Name | None = None
    avatar: Url | None = None
    link: Url | None = None
    role: Role | None = None
    metadata: JsonObject | None = None
    tags: Tags | None = None
    status: Status | SkipJsonSchema[None] = None
    # Read by ``_unset`` before validation (so never set itself): here to be documented.
    unset: list[UnsetField] | SkipJsonSchema[None] = None

    @model_validator(mode="before")
    @classmethod
    def _unset(cls, data: object) -> object:
        if not isinstance(data, dict) or "unset" not in data:
            return data
        return {**unset_as_nulls(data["unset"]), **{k: v for k, v in data.items() if k != "unset"}}

    @field_validator("role")
    @classmethod
    def _null_role(cls, value: str | None) -> str:
        return DEFAULT_ROLE if value is None else value

    @field_validator("metadata")
    @classmethod
    def _null_metadata(cls, value: JsonObject | None) -> JsonObject:
        return {} if value is None else check_private(value)

    @field_validator("tags")
    @classmethod
    def _null_tags(cls, value: list[str] | None) -> list[str]:
        return [] if value is None else value

    @model_validator(mode="after")
    def _name_not_null(self) -> Self:
        for field in ("name", "status"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self

    @property
    def is_empty(self) -> bool:
        return not self.model_fields_set

    @classmethod
    def announced_by(cls, event: UserUpserted) -> UserUpdate:
        """Changes announced by a ``user_upserted`` event: ``None`` means not announced."""
        given = {
            "name": event.name,
            "avatar": event.avatar,
            "link": event.link,
            "role": event.role,
            "metadata": event.metadata,
            "tags": event.tags,
        }
        return cls.model_validate({k: v for k, v in given.items() if v is not None})


# What ``unset`` may name: the fields ``null`` clears, and CometChat's ``statusMessage``,
# which Clarion does not keep (so there is nothing to clear).
UNSETTABLE = ("avatar", "link", "role", "metadata", "tags")
UNSET_IGNORED = ("statusMessage",)


def unset_as_nulls(unset: object) -> dict[str, None]:
    """``unset: ["avatar", ...]`` as the ``null`` changes it stands for; a field that
    cannot be cleared is refused (never dropped)."""
    if not isinstance(unset, list) or not all(isinstance(name, str) for name in unset):
        raise ValueError("unset must be a list of field names")
    refused = [name for name in unset if name not in UNSETTABLE + UNSET_IGNORED]
    if refused:
        raise ValueError(f"unset: cannot unset {refused[0]!r} (one of {', '.join(UNSETTABLE)})")
    return {name: None for name in unset if name in UNSETTABLE}


class UserImport(ApiModel):
    """``POST /v3/users/import`` body. Entries are validated one by one, so a bad entry
    is reported with its index instead of failing the whole request."""

    model_config = ConfigDict(frozen=True)

    users: list[JsonValue] = Field(min_length=1, max_length=MAX_IMPORT)


class UserPublic(public.UserPublic):
    """A user as the public API shows it: the shared contract, made from a stored user."""

    @classmethod
    def of(cls, user: User) -> UserPublic:
        return cls.model_validate(user.model_dump(exclude={"app_id"}))


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
