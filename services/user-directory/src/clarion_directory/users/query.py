"""``GET /v3/users``: the list query, as parsed from the request, and what it means.

The query semantics live twice on purpose: ``UserQuery.matches`` and
``UserQuery.sort_key`` are the reference (the in-memory fake uses them), and the Mongo
repository translates the same query into a filter; one test suite runs against both.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field, field_validator

from clarion_shared.api import ApiModel
from clarion_shared.strict_input import MAX_PAGE
from clarion_shared.strict_json import MAX_SAFE_INTEGER

from .domain import DEFAULT_PER_PAGE, MAX_PER_PAGE, SearchField, Status, User


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


class UserQuery(ApiModel):
    """``GET /v3/users`` query parameters (camelCase), validated and normalised."""

    model_config = ConfigDict(frozen=True)

    search_key: str | None = Field(default=None, max_length=100)
    search_in: tuple[SearchField, ...] = ("uid", "name")
    role: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    status: Status | None = None
    created_after: int | None = Field(default=None, ge=0, le=MAX_SAFE_INTEGER)
    created_before: int | None = Field(default=None, ge=0, le=MAX_SAFE_INTEGER)
    tags: tuple[str, ...] = ()
    page: int = Field(default=1, ge=1, le=MAX_PAGE)
    per_page: int = Field(default=DEFAULT_PER_PAGE, ge=1, le=MAX_PER_PAGE)

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
