"""Pure rules: validation of users and queries, query building, lookup replies."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from clarion_directory.users.domain import REPLY_BUDGET_BYTES, User, lookup_order, resolved
from clarion_directory.users.models import UserCreate, UserPublic, UserUpdate, split_import
from clarion_directory.users.mongo import prefix_regex, users_filter
from clarion_directory.users.query import UserQuery


def make_user(uid: str, **values: Any) -> User:
    values.setdefault("name", uid.capitalize())
    return User(app_id="app", uid=uid, created_at=100, updated_at=100, **values)


# --- users -------------------------------------------------------------------------


def test_create_accepts_a_full_user_and_ignores_unknown_fields() -> None:
    user = UserCreate.model_validate(
        {
            "uid": "Alice_01-x",
            "name": "Alice",
            "avatar": "https://example.com/a.png",
            "link": None,
            "metadata": {"@private": {"email": "a@x.io", "contactNumber": "+1", "pushTokens": []}},
            "tags": ["vip"],
            "withAuthToken": True,
            "statusMessage": "hi",
        }
    )
    assert user.role == "default"
    assert user.metadata["@private"] == {"email": "a@x.io", "contactNumber": "+1", "pushTokens": []}


@pytest.mark.parametrize(
    "body",
    [
        {"uid": "no spaces allowed", "name": "A"},
        {"uid": "", "name": "A"},
        {"uid": "a" * 101, "name": "A"},
        {"uid": "émile", "name": "A"},
        {"uid": 123, "name": "A"},
        {"uid": "alice"},
        {"uid": "alice", "name": ""},
        {"uid": "alice", "name": "n" * 101},
        {"uid": "alice", "name": "A", "metadata": {"@private": "a@x.io"}},
        {"uid": "alice", "name": "A", "metadata": {"@private": {"email": 5}}},
        {"uid": "alice", "name": "A", "metadata": {"@private": {"pushTokens": "t"}}},
        {"uid": "alice", "name": "A", "metadata": []},
        {"uid": "alice", "name": "A", "tags": ["ok", ""]},
        {"uid": "alice", "name": "A", "tags": [f"t{i}" for i in range(101)]},
        {"uid": "alice", "name": "A", "role": ""},
    ],
)
def test_create_refuses_invalid_users(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        UserCreate.model_validate(body)


def test_uid_bounds() -> None:
    assert UserCreate(uid="a", name="A").uid == "a"
    assert UserCreate(uid="a" * 100, name="A").uid == "a" * 100


def test_update_keeps_track_of_the_given_fields_and_nulls() -> None:
    assert UserUpdate.model_validate({}).is_empty
    changes = UserUpdate.model_validate(
        {"avatar": None, "metadata": None, "tags": None, "role": None, "uid": "ignored"}
    )
    assert changes.model_dump(exclude_unset=True) == {
        "avatar": None,
        "metadata": {},
        "tags": [],
        "role": "default",
    }
    with pytest.raises(ValidationError):
        UserUpdate.model_validate({"name": None})
    with pytest.raises(ValidationError):
        UserUpdate.model_validate({"metadata": {"@private": []}})


def test_public_json_is_camel_case_with_nulls() -> None:
    body = UserPublic.of(make_user("alice", last_active_at=None)).to_json()
    assert body == {
        "uid": "alice",
        "name": "Alice",
        "avatar": None,
        "link": None,
        "role": "default",
        "metadata": {},
        "tags": [],
        "status": "offline",
        "lastActiveAt": None,
        "createdAt": 100,
        "updatedAt": 100,
    }


# --- import ------------------------------------------------------------------------


def test_import_reports_every_bad_entry_by_index() -> None:
    valid, failed = split_import(
        [
            {"uid": "a", "name": "A"},
            {"uid": "bad uid", "name": "B"},
            "not an object",
            {"uid": "c"},
            {"uid": "a", "name": "Again"},
            {"uid": "d", "name": "D", "extra": 1},
        ]
    )
    assert [(e.index, e.user.uid) for e in valid] == [(0, "a"), (5, "d")]
    assert [(f.index, f.uid, f.code) for f in failed] == [
        (1, "bad uid", "ERR_VALIDATION"),
        (2, None, "ERR_VALIDATION"),
        (3, "c", "ERR_VALIDATION"),
        (4, "a", "ERR_VALIDATION"),
    ]
    assert failed[2].message == "name: Field required"
    assert "index 0" in failed[3].message


# --- queries -----------------------------------------------------------------------


def q(**params: Any) -> UserQuery:
    return UserQuery.model_validate(params)


def test_query_defaults() -> None:
    query = q()
    assert (query.page, query.per_page, query.offset) == (1, 20, 0)
    assert query.search_in == ("uid", "name")
    assert query.search_prefix is None
    assert query.all_roles == ()


@pytest.mark.parametrize(
    "params",
    [
        {"perPage": 101},
        {"perPage": 0},
        {"perPage": "x"},
        {"page": 0},
        {"page": -1},
        {"status": "busy"},
        {"searchIn": "email"},
        {"createdAfter": "yesterday"},
        {"createdBefore": -5},
        {"searchKey": "k" * 101},
    ],
)
def test_query_refuses_bad_values(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        q(**params)


def test_query_normalises_lists_and_aliases() -> None:
    query = q(
        searchKey="  AL ",
        searchIn="name,uid,name",
        role="admin",
        roles=["mod, admin", "owner"],
        status="Available",
        tags="vip,,beta",
        page="3",
        perPage="100",
    )
    assert query.search_prefix == "al"
    assert query.search_in == ("name", "uid")
    assert query.all_roles == ("admin", "mod", "owner")
    assert query.status == "online"
    assert query.tags == ("vip", "beta")
    assert (query.page, query.per_page, query.offset) == (3, 100, 200)
    assert q(searchIn="both").search_in == ("uid", "name")
    assert q(searchIn="").search_in == ("uid", "name")
    assert q(status="").status is None
    assert q(searchKey="   ").search_prefix is None


def test_query_matches_is_the_reference_semantics() -> None:
    alice = make_user("alice", name="Liddell", role="admin", tags=["vip"], status="online")
    assert q(searchKey="ALI").matches(alice)
    assert q(searchKey="lid").matches(alice)
    assert not q(searchKey="lid", searchIn="uid").matches(alice)
    assert q(roles="x,admin").matches(alice)
    assert not q(role="x").matches(alice)
    assert q(status="online", tags="a,vip").matches(alice)
    assert not q(tags="beta").matches(alice)
    assert q(createdAfter=100, createdBefore=100).matches(alice)
    assert not q(createdAfter=101).matches(alice)
    assert not q(createdBefore=99).matches(alice)


def test_filter_uses_equalities_where_it_can() -> None:
    assert users_filter("app", q()) == {"app_id": "app"}
    assert users_filter("app", q(role="admin", status="available")) == {
        "app_id": "app",
        "role": "admin",
        "status": "online",
    }


def test_filter_translates_every_parameter() -> None:
    built = users_filter(
        "app",
        q(
            roles="a,b",
            createdAfter=10,
            createdBefore=20,
            tags="x,y",
            searchKey="Al.",
        ),
    )
    assert built == {
        "app_id": "app",
        "role": {"$in": ["a", "b"]},
        "created_at": {"$gte": 10, "$lte": 20},
        "tags": {"$in": ["x", "y"]},
        "$or": [
            {"uid_lc": {"$regex": r"^al\."}},
            {"name_lc": {"$regex": r"^al\."}},
        ],
    }
    assert users_filter("app", q(searchKey="b", searchIn="name")) == {
        "app_id": "app",
        "name_lc": {"$regex": "^b"},
    }
    assert users_filter("app", q(createdBefore=5)) == {
        "app_id": "app",
        "created_at": {"$lte": 5},
    }


@pytest.mark.parametrize("prefix", ["a b", "x(y", "[z]", "a.b*c+?", "^$|{}\\", "é-_#&~"])
def test_prefix_regex_matches_literally(prefix: str) -> None:
    pattern = re.compile(prefix_regex(prefix))
    assert pattern.match(prefix + "tail")
    assert not pattern.match("x" + prefix)
    # Nothing but metacharacters is escaped (RE2 refuses escapes like "\ ").
    assert "\\ " not in prefix_regex("a b")


# --- lookups -----------------------------------------------------------------------


def test_lookup_order_drops_repeats_and_impossible_uids() -> None:
    assert lookup_order(["b", "a", "b", "no way", "", "c"]) == (["b", "a", "c"], ["no way", ""])


def test_reply_lists_found_users_in_request_order_and_the_rest_missing() -> None:
    found = [make_user("c"), make_user("a", metadata={"@private": {"email": "a@x.io"}})]
    reply = resolved("req-1", "app", ["a", "b", "a", "c", "bad uid"], found)
    assert reply.request_id == "req-1"
    assert reply.app_id == "app"
    assert [u.uid for u in reply.users] == ["a", "c"]
    assert reply.users[0].metadata == {"@private": {"email": "a@x.io"}}
    assert reply.missing == ["b", "bad uid"]


def test_an_oversized_reply_keeps_only_contact_points() -> None:
    big = {"@private": {"email": "a@x.io"}, "blob": "x" * 2000}
    found = [make_user(f"u{i}", metadata=big) for i in range(1000)]
    reply = resolved("req", "app", [u.uid for u in found], found)
    assert len(reply.to_bytes()) <= REPLY_BUDGET_BYTES
    assert len(reply.users) == 1000
    assert reply.users[0].metadata == {"@private": {"email": "a@x.io"}}
