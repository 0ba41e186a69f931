"""Campaign audiences: the gateway's two questions to the directory.

- ``POST /internal/apps/{app}/audiences/exist``: which of these uids are users (found and
  missing, in the order asked, once each; one bulk read for 10,000 uids).
- ``POST /internal/apps/{app}/audiences/select``: the uids the users list shows for a
  filter, over all its pages, in its order, at most ``limit`` and whether more match.
- ``GET /internal/apps/{app}/roles``: the roles the app's users have (the dashboard's
  "Role" filter offers them).

Run on the service composed on the fake repository (unit) and on the Mongo repository on
the real database (integration). The users are stored through the repository, so that
their creation times (the list's order and the ``createdAfter``/``createdBefore``
filters) can be chosen.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
import pytest_asyncio

from clarion_devtools.helpers import random_ref
from clarion_directory.app import Settings, compose
from clarion_directory.testing import InMemoryUserRepository, in_memory
from clarion_directory.users.domain import User
from clarion_directory.users.query import UserQuery
from clarion_directory.users.service import UserPage, UserRepository
from clarion_shared.http import internal_headers

INTERNAL = internal_headers(Settings().internal_token)


@dataclass(frozen=True)
class Directory:
    """A client of the directory scoped to a fresh app, and the repository behind it."""

    http: httpx.AsyncClient
    repo: UserRepository
    app_id: str

    async def add(self, uid: str, created_at: int = 1_000, **values: Any) -> None:
        await add_user(self.repo, self.app_id, uid, created_at, **values)

    async def exist(self, uids: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = data(
            await self.http.post("/audiences/exist", json={"uids": uids})
        )
        return found

    async def select(self, filter_: dict[str, Any], limit: int = 10_001) -> tuple[list[str], bool]:
        body = {"filter": filter_, "limit": limit}
        selected = data(await self.http.post("/audiences/select", json=body))
        return selected["uids"], selected["more"]

    async def listed(self, params: dict[str, Any], per_page: int) -> list[str]:
        """The uids ``GET /users`` lists for ``params``, page after page."""
        uids: list[str] = []
        for page in range(1, 10_000):
            response = await self.http.get(
                "/users", params={**params, "perPage": per_page, "page": page}
            )
            body = response.json()
            assert response.status_code == 200, response.text
            uids.extend(user["uid"] for user in body["data"])
            if page >= body["meta"]["pagination"]["total_pages"]:
                return uids
        raise AssertionError("the list never ended")


async def add_user(
    repo: UserRepository, app_id: str, uid: str, created_at: int, **values: Any
) -> None:
    values.setdefault("name", uid.capitalize())
    await repo.insert(
        User(app_id=app_id, uid=uid, created_at=created_at, updated_at=created_at, **values)
    )


def data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["source"]) == ("ERR_VALIDATION", "clarion")
    assert field in [detail["field"] for detail in error["details"]], error


@pytest_asyncio.fixture(loop_scope="session")
async def directory(repo: UserRepository) -> AsyncIterator[Directory]:
    settings = Settings()
    app = compose(settings, replace(in_memory(settings), users=repo))
    app_id = random_ref("app")
    base = f"http://directory/internal/apps/{app_id}"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=base, headers=INTERNAL) as http:
        yield Directory(http, repo, app_id)


# --- exist ---------------------------------------------------------------------------


async def test_exist_answers_each_uid_once_in_the_order_asked(directory: Directory) -> None:
    for uid in ("alice", "bob", "carol"):
        await directory.add(uid)
    # A user of another app, and one stored under the document id ("{app}:{uid}") that
    # the invalid uid "a:b" would make in this app: neither is this app's user.
    await add_user(directory.repo, random_ref("app"), "dave", 1_000)
    await add_user(directory.repo, f"{directory.app_id}:a", "b", 1_000)
    asked = ["zed", "bob", "alice", "zed", "bad uid", "bob", "dave", "", "x" * 101, "a:b"]
    assert await directory.exist([*asked, "alice", "carol"]) == {
        "found": ["bob", "alice", "carol"],
        "missing": ["zed", "bad uid", "dave", "", "x" * 101, "a:b"],
    }


async def test_exist_with_none_found_or_all_found(directory: Directory) -> None:
    await directory.add("alice")
    assert await directory.exist(["nobody"]) == {"found": [], "missing": ["nobody"]}
    assert await directory.exist(["alice"]) == {"found": ["alice"], "missing": []}


async def test_exist_takes_ten_thousand_uids_in_one_read(directory: Directory) -> None:
    existing = [f"user{i:05d}" for i in range(0, 10_000, 100)]
    await asyncio.gather(*(directory.add(uid) for uid in existing))
    asked = [f"user{i:05d}" for i in reversed(range(10_000))]
    if isinstance(directory.repo, InMemoryUserRepository):
        directory.repo.get_many_calls = 0
    answer = await directory.exist(asked)
    assert answer["found"] == [uid for uid in asked if uid in set(existing)]
    assert answer["missing"] == [uid for uid in asked if uid not in set(existing)]
    if isinstance(directory.repo, InMemoryUserRepository):
        assert directory.repo.get_many_calls == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"uids": [f"u{i}" for i in range(10_001)]}, "uids"),
        ({"uids": []}, "uids"),
        ({"uids": "alice"}, "uids"),
        ({"uids": [1]}, "uids.0"),
        ({}, "uids"),
    ],
)
async def test_exist_refuses_bad_bodies(directory: Directory, body: Any, field: str) -> None:
    refused(await directory.http.post("/audiences/exist", json=body), field)


# --- select --------------------------------------------------------------------------

# Stored in another order than the list's: createdAt, then uid.
PEOPLE: list[tuple[str, int, dict[str, Any]]] = [
    ("dora", 300, {"name": "Dora", "tags": ["vip", "beta"]}),
    ("aaron", 400, {"name": "Zed Aaron", "role": "admin", "status": "online"}),
    ("carl", 200, {"name": "Annabel", "role": "moderator", "status": "online", "tags": ["beta"]}),
    ("bob", 200, {"name": "Bobby"}),
    ("ann", 100, {"name": "Ann Lee", "role": "admin", "status": "online", "tags": ["vip"]}),
]
EVERYONE = ["ann", "bob", "carl", "dora", "aaron"]


async def add_people(directory: Directory) -> None:
    for uid, created_at, values in PEOPLE:
        await directory.add(uid, created_at, **values)


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ({}, EVERYONE),
        ({"role": "admin"}, ["ann", "aaron"]),
        ({"role": ["moderator"], "roles": "admin"}, ["ann", "carl", "aaron"]),
        ({"roles": "moderator,nobody"}, ["carl"]),
        ({"status": "online"}, ["ann", "carl", "aaron"]),
        ({"status": "available"}, ["ann", "carl", "aaron"]),
        ({"status": "offline"}, ["bob", "dora"]),
        ({"searchKey": "ann"}, ["ann", "carl"]),
        ({"searchKey": "ANN", "searchIn": "uid"}, ["ann"]),
        ({"searchKey": "anna", "searchIn": ["name"]}, ["carl"]),
        ({"searchKey": "a", "searchIn": "uid,name"}, ["ann", "carl", "aaron"]),
        ({"searchKey": "zed", "searchIn": "both"}, ["aaron"]),
        ({"createdAfter": 200}, ["bob", "carl", "dora", "aaron"]),
        ({"createdBefore": 200}, ["ann", "bob", "carl"]),
        ({"createdAfter": 200, "createdBefore": 300}, ["bob", "carl", "dora"]),
        ({"createdAfter": 401}, []),
        ({"tags": "vip"}, ["ann", "dora"]),
        ({"tags": ["beta", "vip"]}, ["ann", "carl", "dora"]),
        ({"tags": "none"}, []),
        ({"role": "admin", "status": "online", "searchKey": "a", "createdBefore": 100}, ["ann"]),
        ({"role": None, "tags": None, "searchKey": None}, EVERYONE),
    ],
)
async def test_select_filters_as_the_users_list_does(
    directory: Directory, filter_: dict[str, Any], expected: list[str]
) -> None:
    await add_people(directory)
    assert await directory.select(filter_) == (expected, False)
    # The list, asked with the same filter as query parameters, pages of two.
    params = {key: value for key, value in filter_.items() if value is not None}
    assert await directory.listed(params, per_page=2) == expected


async def test_select_limit_and_more(directory: Directory) -> None:
    await add_people(directory)
    assert await directory.select({}, limit=5) == (EVERYONE, False)
    assert await directory.select({}, limit=4) == (EVERYONE[:4], True)
    assert await directory.select({}, limit=1) == (["ann"], True)
    assert await directory.select({"status": "online"}, limit=2) == (["ann", "carl"], True)
    assert await directory.select({"status": "online"}, limit=3) == (
        ["ann", "carl", "aaron"],
        False,
    )
    assert await directory.select({"tags": "none"}, limit=1) == ([], False)


async def test_select_sees_only_the_apps_users(directory: Directory) -> None:
    await add_people(directory)
    await add_user(directory.repo, random_ref("app"), "alien", 100)
    assert await directory.select({}) == (EVERYONE, False)


async def test_select_gives_what_every_page_of_the_list_gives(directory: Directory) -> None:
    """250 users with shared creation times (ties ordered by uid), roles, presences,
    names and tags drawn at random: for each filter, the uids selected are the uids of
    every page of the list, in order, whatever the page size."""
    draw = random.Random(8)
    await asyncio.gather(
        *(
            directory.add(
                f"{draw.choice('abcxyz')}{draw.randrange(1000):03d}-{i}",
                draw.randrange(1_000, 1_020),
                name=f"{draw.choice(['Ann', 'Bo', 'ann', 'Cy'])} {i}",
                role=draw.choice(["default", "admin", "staff"]),
                status=draw.choice(["online", "offline"]),
                tags=draw.sample(["vip", "beta", "eu", "us"], draw.randrange(3)),
            )
            for i in range(250)
        )
    )
    filters: list[dict[str, Any]] = [
        {},
        {"role": "admin"},
        {"roles": "admin,staff", "status": "offline"},
        {"searchKey": "an"},
        {"searchKey": "a", "searchIn": "uid"},
        {"createdAfter": 1_005, "createdBefore": 1_012},
        {"tags": "vip,eu"},
        {"tags": "beta", "status": "online", "createdAfter": 1_010},
    ]
    for filter_ in filters:
        selected, more = await directory.select(filter_)
        assert not more
        for per_page in (100, 7):
            assert await directory.listed(filter_, per_page) == selected, (filter_, per_page)
    everyone, _ = await directory.select({})
    assert len(everyone) == 250


@pytest.mark.parametrize(
    ("filter_", "field"),
    [
        ({"status": "away"}, "status"),
        ({"searchIn": "email"}, "searchIn"),
        ({"createdAfter": "today"}, "createdAfter"),
        ({"createdBefore": -1}, "createdBefore"),
        ({"searchKey": "x" * 101}, "searchKey"),
    ],
)
async def test_select_refuses_what_the_list_refuses(
    directory: Directory, filter_: dict[str, Any], field: str
) -> None:
    refused(
        await directory.http.post("/audiences/select", json={"filter": filter_, "limit": 5}),
        f"filter.{field}",
    )
    refused(await directory.http.get("/users", params=filter_), field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"filter": {"createdAftr": 100}, "limit": 5}, "filter.createdAftr"),
        ({"filter": {"page": 2}, "limit": 5}, "filter.page"),
        ({"filter": {"perPage": 100}, "limit": 5}, "filter.perPage"),
        ({"filter": {}, "limit": 0}, "limit"),
        ({"filter": {}, "limit": 10_002}, "limit"),
        ({"filter": {}}, "limit"),
        ({"limit": 5}, "filter"),
        ({"filter": "all", "limit": 5}, "filter"),
        ({"filter": {"role": 5}, "limit": 5}, "filter.role"),
    ],
)
async def test_select_refuses_unknown_filters_and_bad_limits(
    directory: Directory, body: Any, field: str
) -> None:
    refused(await directory.http.post("/audiences/select", json=body), field)


# --- the fake only: sizes and reads ---------------------------------------------------


class CountingRepository(InMemoryUserRepository):
    """The fake, counting the list reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def search(self, app_id: str, query: UserQuery) -> UserPage:
        self.reads += 1
        return await super().search(app_id, query)

    async def search_uids(self, app_id: str, query: UserQuery, limit: int) -> list[str]:
        self.reads += 1
        return await super().search_uids(app_id, query, limit)


async def test_select_tells_more_than_ten_thousand_in_one_read() -> None:
    repo = CountingRepository()
    settings = Settings()
    app = compose(settings, in_memory(settings, repo))
    for i in range(10_002):
        await add_user(repo, "app1", f"u{i:05d}", 1_000 + i % 7)
    expected = sorted(
        (f"u{i:05d}" for i in range(10_002)), key=lambda u: (1_000 + int(u[1:]) % 7, u)
    )
    transport = httpx.ASGITransport(app=app)
    base = "http://directory/internal/apps/app1"
    async with httpx.AsyncClient(transport=transport, base_url=base, headers=INTERNAL) as http:
        answer = data(await http.post("/audiences/select", json={"filter": {}, "limit": 10_001}))
        assert (answer["uids"], answer["more"]) == (expected[:10_001], True)
        assert repo.reads == 1
        answer = data(
            await http.post(
                "/audiences/select", json={"filter": {"createdAfter": 1_001}, "limit": 10_001}
            )
        )
        assert answer["more"] is False
        assert answer["uids"] == [uid for uid in expected if int(uid[1:]) % 7 >= 1]


async def test_both_need_the_internal_token() -> None:
    repo = InMemoryUserRepository()
    settings = Settings()
    app = compose(settings, in_memory(settings, repo))
    await add_user(repo, "app1", "ann", 100)
    transport = httpx.ASGITransport(app=app)
    base = "http://directory/internal/apps/app1"
    async with httpx.AsyncClient(transport=transport, base_url=base) as http:
        for headers in ({}, {"X-Clarion-Internal-Token": "wrong"}):
            for path, body in (
                ("/audiences/exist", {"uids": ["ann"]}),
                ("/audiences/select", {"filter": {}, "limit": 10}),
            ):
                response = await http.post(path, json=body, headers=headers)
                assert response.status_code == 401, response.text
                assert response.json()["error"]["code"] == "ERR_UNAUTHORIZED"
        assert repo.get_many_calls == 0


# --- roles ---------------------------------------------------------------------------


async def test_roles_are_the_distinct_roles_of_the_apps_users_sorted(
    directory: Directory,
) -> None:
    assert data(await directory.http.get("/roles")) == {"roles": [], "truncated": False}
    for n, role in enumerate(["vip", "default", "vip", "admin", "staff"]):
        await directory.add(f"u{n}", role=role)
    # Another app's roles are not this app's.
    await add_user(directory.repo, random_ref("app"), "other", 1_000, role="elsewhere")
    listed = data(await directory.http.get("/roles"))
    assert listed == {"roles": ["admin", "default", "staff", "vip"], "truncated": False}
    await directory.repo.delete(directory.app_id, "u4")  # the last "staff" goes
    assert data(await directory.http.get("/roles"))["roles"] == ["admin", "default", "vip"]
