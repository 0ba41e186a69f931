"""One suite for every ``UserRepository``: the in-memory fake and MongoDB (FerretDB).

The fake is what the unit tests trust, so it must behave like the real adapter.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from clarion_devtools.helpers import logged_client, random_ref
from clarion_devtools.localinfra import InfraAddresses
from clarion_directory.users.domain import UidAlreadyExists, User
from clarion_directory.users.models import UserUpdate
from clarion_directory.users.mongo import UPSERT_CONCURRENCY, MongoUserRepository
from clarion_directory.users.query import UserQuery
from clarion_directory.users.service import Upsert, UserRepository


def make_user(app_id: str, uid: str, **values: Any) -> User:
    values.setdefault("name", uid.capitalize())
    values.setdefault("created_at", 1_700_000_000)
    values.setdefault("updated_at", values["created_at"])
    return User(app_id=app_id, uid=uid, **values)


def query(**params: Any) -> UserQuery:
    return UserQuery.model_validate(params)


async def uids(repo: UserRepository, app_id: str, **params: Any) -> list[str]:
    found = await repo.search(app_id, query(**params))
    return [u.uid for u in found.users]


@pytest.fixture
def app_id() -> str:
    return random_ref("app")


async def test_insert_then_get_round_trips_every_field(repo: UserRepository, app_id: str) -> None:
    user = make_user(
        app_id,
        "alice",
        name="Alice Liddell",
        avatar="https://example.com/a.png",
        link="https://example.com/alice",
        role="admin",
        metadata={
            "@private": {"email": "a@example.com", "contactNumber": "+100", "pushTokens": []},
            "dotted.key": 1,
            "$dollar": {"nested": [1, "two", None, True]},
        },
        tags=["vip", "beta"],
    )
    await repo.insert(user)
    assert await repo.get(app_id, "alice") == user
    assert await repo.get(app_id, "bob") is None
    assert await repo.get(random_ref("other-app"), "alice") is None


async def test_insert_refuses_a_taken_uid_in_the_same_app_only(
    repo: UserRepository, app_id: str
) -> None:
    await repo.insert(make_user(app_id, "alice"))
    with pytest.raises(UidAlreadyExists):
        await repo.insert(make_user(app_id, "alice", name="Other"))
    other_app = random_ref("app")
    await repo.insert(make_user(other_app, "alice"))
    stored = await repo.get(app_id, "alice")
    assert stored is not None
    assert stored.name == "Alice"


async def test_get_many_returns_only_the_users_that_exist(
    repo: UserRepository, app_id: str
) -> None:
    for uid in ("a", "b", "c"):
        await repo.insert(make_user(app_id, uid))
    await repo.insert(make_user(random_ref("app"), "d"))
    found = await repo.get_many(app_id, ["c", "x", "a", "d"])
    assert sorted(u.uid for u in found) == ["a", "c"]
    assert await repo.get_many(app_id, []) == []


async def test_update_changes_only_the_given_fields(repo: UserRepository, app_id: str) -> None:
    await repo.insert(
        make_user(app_id, "alice", avatar="a.png", tags=["x"], metadata={"k": 1}, role="admin")
    )
    changes = UserUpdate.model_validate({"name": "Alicia", "avatar": None, "tags": ["y", "z"]})
    updated = await repo.update(app_id, "alice", changes, at=1_800_000_000)
    assert updated is not None
    assert (updated.name, updated.avatar, updated.tags) == ("Alicia", None, ["y", "z"])
    assert (updated.metadata, updated.role) == ({"k": 1}, "admin")
    assert (updated.created_at, updated.updated_at) == (1_700_000_000, 1_800_000_000)
    assert await repo.get(app_id, "alice") == updated
    # The search copies follow the new name.
    assert await uids(repo, app_id, searchKey="ALICIA") == ["alice"]
    assert await repo.update(app_id, "nobody", changes, at=1) is None


async def test_delete_and_its_guard_against_newer_data(repo: UserRepository, app_id: str) -> None:
    await repo.insert(make_user(app_id, "alice", updated_at=1_700_000_100))
    assert not await repo.delete(app_id, "alice", not_after=1_700_000_099)
    assert await repo.get(app_id, "alice") is not None
    assert await repo.delete(app_id, "alice", not_after=1_700_000_100)
    assert await repo.get(app_id, "alice") is None
    assert not await repo.delete(app_id, "alice")


async def test_upserts_of_more_stored_users_than_the_database_pool_holds_complete(
    repo: UserRepository, app_id: str
) -> None:
    """Issue 6, finding 8: one bulk that updated 50 or more stored users (FerretDB's
    PostgreSQL pool) wedged the embedded database for every client, for good. The
    second call below updates 120 stored users; it must finish, and reads with it."""
    batch = [
        Upsert(uid=f"u{i}", changes=UserUpdate.model_validate({"name": f"N{i}"}), at=1_800_000_000)
        for i in range(120)
    ]
    created = await asyncio.wait_for(repo.upsert_many(app_id, batch), 60)
    assert {r.outcome for r in created} == {"created"}
    renamed = [
        Upsert(uid=u.uid, changes=UserUpdate.model_validate({"name": "R"}), at=1_800_000_001)
        for u in batch
    ]
    updated = await asyncio.wait_for(repo.upsert_many(app_id, renamed), 60)
    assert [r.outcome for r in updated] == ["updated"] * 120
    user = await asyncio.wait_for(repo.get(app_id, "u119"), 10)
    assert user is not None
    assert user.name == "R"


async def test_upsert_many_creates_and_updates_in_one_call(
    repo: UserRepository, app_id: str
) -> None:
    await repo.insert(make_user(app_id, "old", role="admin", tags=["keep"]))
    upserts = [
        Upsert(uid="old", changes=UserUpdate.model_validate({"name": "Renamed"}), at=1_800_000_000),
        Upsert(uid="new", changes=UserUpdate.model_validate({"name": "New"}), at=1_800_000_000),
        Upsert(uid="bare", changes=UserUpdate(), at=1_800_000_000),
    ]
    results = await repo.upsert_many(app_id, upserts)
    assert [r.outcome for r in results] == ["updated", "created", "created"]
    old = await repo.get(app_id, "old")
    assert old is not None
    assert (old.name, old.role, old.tags) == ("Renamed", "admin", ["keep"])
    assert (old.created_at, old.updated_at) == (1_700_000_000, 1_800_000_000)
    new = await repo.get(app_id, "new")
    assert new == User(
        app_id=app_id, uid="new", name="New", created_at=1_800_000_000, updated_at=1_800_000_000
    )
    bare = await repo.get(app_id, "bare")
    assert bare is not None
    assert bare.name == "bare"


async def test_upsert_if_newer_ignores_stale_changes(repo: UserRepository, app_id: str) -> None:
    await repo.insert(make_user(app_id, "alice", updated_at=1_700_000_100))
    stale = Upsert(uid="alice", changes=UserUpdate(name="Stale"), at=1_700_000_050)
    assert not await repo.upsert_if_newer(app_id, stale)
    stored = await repo.get(app_id, "alice")
    assert stored is not None
    assert stored.name == "Alice"
    newer = Upsert(uid="alice", changes=UserUpdate(name="Newer"), at=1_700_000_100)
    assert await repo.upsert_if_newer(app_id, newer)
    stored = await repo.get(app_id, "alice")
    assert stored is not None
    assert (stored.name, stored.updated_at) == ("Newer", 1_700_000_100)
    fresh = Upsert(uid="bob", changes=UserUpdate(name="Bob"), at=1_700_000_000)
    assert await repo.upsert_if_newer(app_id, fresh)
    assert await repo.get(app_id, "bob") is not None


async def test_presence_applies_in_time_order(repo: UserRepository, app_id: str) -> None:
    await repo.insert(make_user(app_id, "alice"))
    assert await repo.set_presence(app_id, "alice", "online", 1_700_000_010)
    assert not await repo.set_presence(app_id, "alice", "offline", 1_700_000_005)
    stored = await repo.get(app_id, "alice")
    assert stored is not None
    assert (stored.status, stored.last_active_at) == ("online", 1_700_000_010)
    # The same second again applies (a later record of the same partition wins).
    assert await repo.set_presence(app_id, "alice", "offline", 1_700_000_010)
    stored = await repo.get(app_id, "alice")
    assert stored is not None
    assert stored.status == "offline"
    # Presence is not a profile change.
    assert stored.updated_at == 1_700_000_000
    assert not await repo.set_presence(app_id, "nobody", "online", 1_700_000_020)


async def seed(repo: UserRepository, app_id: str) -> None:
    rows = [
        ("alice", "Alice Liddell", "admin", "online", 100, ["vip"]),
        ("bob", "Bob", "default", "offline", 200, ["beta", "vip"]),
        ("carol", "Al Carol", "moderator", "offline", 200, []),
        ("al_x", "Xavier (x)", "default", "online", 300, ["beta"]),
        ("dave", "dave.smith", "default", "offline", 400, []),
    ]
    for uid, name, role, status, created, tags in rows:
        await repo.insert(
            make_user(
                app_id, uid, name=name, role=role, status=status, created_at=created, tags=tags
            )
        )
    await repo.insert(make_user(random_ref("app"), "alien", name="Alien", created_at=1))


async def test_search_is_sorted_by_creation_then_uid(repo: UserRepository, app_id: str) -> None:
    await seed(repo, app_id)
    assert await uids(repo, app_id) == ["alice", "bob", "carol", "al_x", "dave"]


async def test_search_key_is_a_case_insensitive_prefix(repo: UserRepository, app_id: str) -> None:
    await seed(repo, app_id)
    assert await uids(repo, app_id, searchKey="AL") == ["alice", "carol", "al_x"]
    assert await uids(repo, app_id, searchKey="al", searchIn="uid") == ["alice", "al_x"]
    assert await uids(repo, app_id, searchKey="al", searchIn="name") == ["alice", "carol"]
    assert await uids(repo, app_id, searchKey="lice") == []
    # Regex metacharacters and spaces are literal.
    assert await uids(repo, app_id, searchKey="xavier (") == ["al_x"]
    assert await uids(repo, app_id, searchKey="dave.") == ["dave"]
    assert await uids(repo, app_id, searchKey="dave*") == []
    assert await uids(repo, app_id, searchKey="al c") == ["carol"]


async def test_search_filters(repo: UserRepository, app_id: str) -> None:
    await seed(repo, app_id)
    assert await uids(repo, app_id, role="admin") == ["alice"]
    assert await uids(repo, app_id, roles="admin,moderator") == ["alice", "carol"]
    assert await uids(repo, app_id, role="admin", roles="moderator") == ["alice", "carol"]
    assert await uids(repo, app_id, status="online") == ["alice", "al_x"]
    assert await uids(repo, app_id, status="available") == ["alice", "al_x"]
    assert await uids(repo, app_id, status="offline") == ["bob", "carol", "dave"]
    assert await uids(repo, app_id, createdAfter=200, createdBefore=300) == [
        "bob",
        "carol",
        "al_x",
    ]
    assert await uids(repo, app_id, createdAfter=401) == []
    assert await uids(repo, app_id, tags="vip") == ["alice", "bob"]
    assert await uids(repo, app_id, tags="beta,vip") == ["alice", "bob", "al_x"]
    assert await uids(repo, app_id, tags="beta", status="online", searchKey="al") == ["al_x"]


async def test_search_pages_are_stable_and_counted(repo: UserRepository, app_id: str) -> None:
    await seed(repo, app_id)
    pages = [await repo.search(app_id, query(page=n, perPage=2)) for n in (1, 2, 3, 4)]
    assert [[u.uid for u in p.users] for p in pages] == [
        ["alice", "bob"],
        ["carol", "al_x"],
        ["dave"],
        [],
    ]
    assert {p.total for p in pages} == {5}
    filtered = await repo.search(app_id, query(status="online", perPage=1))
    assert (filtered.total, [u.uid for u in filtered.users]) == (2, ["alice"])


@pytest.mark.integration
async def test_each_lookup_strategy_finds_the_same_users(
    mongo_client: AsyncMongoClient[dict[str, Any]], test_db_name: str, app_id: str
) -> None:
    db = mongo_client[test_db_name]
    by_in = MongoUserRepository(db, lookup="in")
    by_each = MongoUserRepository(db, lookup="each", lookup_concurrency=4)
    await by_in.start()
    try:
        for uid in ("a", "b", "c"):
            await by_in.insert(make_user(app_id, uid))
        wanted = ["c", "x", "a", "b"]
        assert sorted(u.uid for u in await by_each.get_many(app_id, wanted)) == ["a", "b", "c"]
        assert sorted(u.uid for u in await by_in.get_many(app_id, wanted)) == ["a", "b", "c"]
    finally:
        await mongo_client.drop_database(test_db_name)


@pytest.mark.integration
async def test_large_lookups_share_a_snapshot_that_never_hides_new_users(
    mongo_client: AsyncMongoClient[dict[str, Any]], test_db_name: str, app_id: str
) -> None:
    db = mongo_client[test_db_name]
    this = MongoUserRepository(db)  # auto
    other_instance = MongoUserRepository(db)
    await this.start()
    await other_instance.start()
    try:
        await this.upsert_many(
            app_id, [Upsert(uid=f"u{i}", changes={"name": f"U{i}"}, at=1) for i in range(200)]
        )
        wanted = [f"u{i}" for i in range(0, 400, 2)]  # 200 uids: a large lookup
        found = await this.get_many(app_id, wanted)
        assert [u.uid for u in found] == [f"u{i}" for i in range(0, 200, 2)]

        # Created through another instance: this one's snapshot lacks it, yet it is found.
        await other_instance.insert(make_user(app_id, "u250"))
        found = await this.get_many(app_id, wanted)
        assert "u250" in {u.uid for u in found}

        # Written through this instance: the snapshot is dropped, the change shows at once.
        await this.update(app_id, "u0", UserUpdate(name="Renamed"), at=2)
        (first, *_) = await this.get_many(app_id, wanted)
        assert (first.uid, first.name) == ("u0", "Renamed")

        # Deleted through this instance: gone from the next lookup.
        assert await this.delete(app_id, "u2")
        assert "u2" not in {u.uid for u in await this.get_many(app_id, wanted)}
    finally:
        await mongo_client.drop_database(test_db_name)


@pytest.mark.integration
async def test_concurrent_imports_share_one_bound_on_updates_in_flight(
    infra: InfraAddresses, test_db_name: str, app_id: str
) -> None:
    """Issue 11's CI run: during a storm of retried imports, a 5-user list once waited
    10 s (504). Each import had its own bound of updates in flight, so six imports sent
    six times as many updates at once, and reads queued behind them all. The bound is
    the process's: concurrent imports share it."""
    async with logged_client(infra.mongodb_url) as (client, commands):
        repo = MongoUserRepository(client[test_db_name])
        await repo.start()
        try:
            stored = [Upsert(uid=f"u{i}", changes=UserUpdate(), at=1) for i in range(40)]
            await repo.upsert_many(app_id, stored)
            commands.clear()
            imports = [
                [Upsert(uid=u.uid, changes=UserUpdate(name=f"N{n}"), at=2) for u in stored]
                for n in range(3)
            ]
            results = await asyncio.gather(*(repo.upsert_many(app_id, i) for i in imports))
            assert [r.outcome for done in results for r in done] == ["updated"] * 120
            # On MongoDB each import is one bulk command: at most three at once either way.
            assert commands.peak["update"] <= UPSERT_CONCURRENCY, commands.peak
        finally:
            await client.drop_database(test_db_name)
