"""The users as the dashboard reads them: the Users page's filters, and the
user-directory's internal API called exactly as ``GET /v3/users`` and
``GET /v3/users/{uid}`` forward to it (``proxies.routes``): one path to the data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, time
from urllib.parse import quote, urlencode

from pydantic import BaseModel, ValidationError

from clarion_shared.api import Paged
from clarion_shared.public.users import UserPublic

from ..proxies.peers import Forward, Peers, PeerUnavailable

PER_PAGE_CHOICES = (10, 20, 50, 100)
DEFAULT_PER_PAGE = 20
STATUSES = ("online", "offline")


class DirectoryProblem(Exception):
    """The directory could not answer; ``message`` says so in words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def day_seconds(value: str, end: bool) -> int | None:
    """A date input's value as Unix seconds: the day's first second, or (``end``) its
    last, so that "Created before" includes the day. Days are UTC days."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    moment = datetime.combine(day, time.max if end else time.min, UTC)
    return int(moment.timestamp())


def bounded_int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        number = int(value or "")
    except ValueError:
        return default
    return min(max(number, low), high)


@dataclass(frozen=True)
class UsersFilter:
    """The Users page's query string, as typed: what the form shows back."""

    search: str = ""
    role: str = ""
    status: str = ""
    created_after: str = ""
    created_before: str = ""
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> UsersFilter:
        """Lenient: a value the page cannot use is dropped (a bad date is said in words
        by ``problems``), never a JSON error."""
        status = params.get("status", "")
        return cls(
            search=params.get("search", "").strip()[:100],
            role=params.get("role", "").strip()[:100],
            status=status if status in STATUSES else "",
            created_after=params.get("createdAfter", "").strip()[:10],
            created_before=params.get("createdBefore", "").strip()[:10],
            page=bounded_int(params.get("page"), 1, 1, 100_000),
            per_page=bounded_int(params.get("perPage"), DEFAULT_PER_PAGE, 1, PER_PAGE_CHOICES[-1]),
        )

    def problems(self) -> list[str]:
        out = []
        for label, value in (
            ("Created after", self.created_after),
            ("Created before", self.created_before),
        ):
            if value and day_seconds(value, end=False) is None:
                out.append(f"{label} must be a date (YYYY-MM-DD).")
        return out

    def directory_query(self) -> str:
        """The query string of the directory's list: ``GET /v3/users``'s parameters."""
        params: dict[str, str | int] = {"page": self.page, "perPage": self.per_page}
        if self.search:
            params["searchKey"] = self.search
        if self.role:
            params["role"] = self.role
        if self.status:
            params["status"] = self.status
        after = day_seconds(self.created_after, end=False) if self.created_after else None
        before = day_seconds(self.created_before, end=True) if self.created_before else None
        if after is not None:
            params["createdAfter"] = after
        if before is not None:
            params["createdBefore"] = before
        return urlencode(params)

    def page_query(self, **changes: int | str) -> str:
        """This page's own query string with ``changes`` (paging links)."""
        changed = replace(self, **changes)  # type: ignore[arg-type]
        names = {"created_after": "createdAfter", "created_before": "createdBefore"}
        values = {names.get(k, k): v for k, v in asdict(changed).items()}
        values["perPage"] = values.pop("per_page")
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


def _app_path(app_id: str) -> str:
    return f"/internal/apps/{quote(app_id, safe='')}/users"


def _error_message(body: bytes, fallback: str) -> str:
    try:
        error = json.loads(body).get("error", {})
    except (ValueError, AttributeError):
        return fallback
    message = error.get("devMessage") or error.get("message")
    return str(message) if message else fallback


class _RoleList(BaseModel):
    roles: list[str]


class _Roles(BaseModel):
    data: _RoleList


class DirectoryUsers:
    """The directory's users API, over the peers' client (``proxies.peers``)."""

    def __init__(self, peers: Peers) -> None:
        self._peers = peers

    async def page(self, app_id: str, users: UsersFilter) -> Paged[UserPublic]:
        body = await self._get(_app_path(app_id), users.directory_query())
        if body is None:
            raise DirectoryProblem("The user directory has no such list.")
        try:
            return Paged[UserPublic].model_validate_json(body)
        except ValidationError as exc:
            raise DirectoryProblem("The user directory answered something unexpected.") from exc

    async def get(self, app_id: str, uid: str) -> UserPublic | None:
        body = await self._get(f"{_app_path(app_id)}/{quote(uid, safe='')}", "")
        if body is None:
            return None
        return UserPublic.model_validate(json.loads(body)["data"])

    async def roles(self, app_id: str) -> list[str]:
        """The roles the app's users have (the directory's distinct values)."""
        body = await self._get(f"/internal/apps/{quote(app_id, safe='')}/roles", "")
        if body is None:
            return []
        try:
            return _Roles.model_validate_json(body).data.roles
        except ValidationError as exc:
            raise DirectoryProblem("The user directory answered something unexpected.") from exc

    async def _get(self, path: str, query: str) -> bytes | None:
        """The answer's body; None for a 404."""
        try:
            answer = await self._peers.forward("directory", Forward("GET", path, query, b"", ()))
        except PeerUnavailable as exc:
            raise DirectoryProblem(
                "The user directory did not answer. Try again in a moment."
            ) from exc
        if answer.status == 404:
            return None
        if answer.status == 400:
            raise DirectoryProblem(
                "The user directory refused the filters: "
                + _error_message(answer.body, "they are not valid.")
            )
        if answer.status != 200:
            raise DirectoryProblem(
                f"The user directory answered with an error ({answer.status}). Try again."
            )
        return answer.body
