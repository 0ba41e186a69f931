"""The users as the dashboard reads them: the Users page's filters, and the
user-directory's internal API called exactly as ``GET /v3/users`` and
``GET /v3/users/{uid}`` forward to it (``proxies.routes``): one path to the data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from pydantic import BaseModel

from clarion_shared.api import Paged
from clarion_shared.public.users import UserPublic

from ..proxies.peers import Peers
from .forms import (
    DEFAULT_PER_PAGE,
    PageQuery,
    created_problems,
    created_range,
    one_of,
    page_fields,
    text,
)
from .peer_reads import PeerCalls, PeerProblem

STATUSES = ("online", "offline")
# The Role selects offer the roles the app's users have, and CometChat's built-in
# "default" (a new app has no users yet).
BUILT_IN_ROLES = frozenset({"default"})


class DirectoryProblem(PeerProblem):
    """The directory could not answer; ``message`` says so in words."""


@dataclass(frozen=True)
class UsersFilter(PageQuery):
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
        return cls(
            search=text(params, "search", 100),
            role=text(params, "role", 100),
            status=one_of(params.get("status"), STATUSES) or "",
            created_after=text(params, "createdAfter", 10),
            created_before=text(params, "createdBefore", 10),
            **page_fields(params),
        )

    @property
    def filtered(self) -> bool:
        return any((self.search, self.role, self.status, self.created_after, self.created_before))

    def problems(self) -> list[str]:
        return created_problems(self.created_after, self.created_before)

    def directory_query(self) -> str:
        """The query string of the directory's list: ``GET /v3/users``'s parameters."""
        params: dict[str, str | int] = {"page": self.page, "perPage": self.per_page}
        for name, value in (
            ("searchKey", self.search),
            ("role", self.role),
            ("status", self.status),
        ):
            if value:
                params[name] = value
        after, before = created_range(self.created_after, self.created_before)
        if after is not None:
            params["createdAfter"] = after
        if before is not None:
            params["createdBefore"] = before
        return urlencode(params)


def role_choices(known: Iterable[str], shown: Iterable[UserPublic], chosen: str) -> list[str]:
    """What a Role select offers: the roles ``known`` to the directory, those of the
    users ``shown``, the built-in one and the one ``chosen``."""
    return sorted(set(known) | BUILT_IN_ROLES | {u.role for u in shown} | ({chosen} - {""}))


def _app_path(app_id: str) -> str:
    return f"/internal/apps/{quote(app_id, safe='')}/users"


class _RoleList(BaseModel):
    roles: list[str]


class _Roles(BaseModel):
    data: _RoleList


class DirectoryUsers:
    """The directory's users API, over the peers' client (``proxies.peers``)."""

    def __init__(self, peers: Peers) -> None:
        self._peer = PeerCalls(peers, "directory", "The user directory", DirectoryProblem)

    async def page(self, app_id: str, users: UsersFilter) -> Paged[UserPublic]:
        body = await self._peer.get(_app_path(app_id), users.directory_query())
        if body is None:
            raise DirectoryProblem("The user directory has no such list.")
        return self._peer.parse(Paged[UserPublic], body)

    async def get(self, app_id: str, uid: str) -> UserPublic | None:
        body = await self._peer.get(f"{_app_path(app_id)}/{quote(uid, safe='')}", "")
        if body is None:
            return None
        return UserPublic.model_validate(json.loads(body)["data"])

    async def roles(self, app_id: str) -> list[str]:
        """The roles the app's users have (the directory's distinct values)."""
        body = await self._peer.get(f"/internal/apps/{quote(app_id, safe='')}/roles", "")
        if body is None:
            return []
        return self._peer.parse(_Roles, body).data.roles

    async def known_roles(self, app_id: str) -> list[str]:
        """The roles, or none when the directory cannot say (the page shows the rest)."""
        try:
            return await self.roles(app_id)
        except DirectoryProblem:
            return []
