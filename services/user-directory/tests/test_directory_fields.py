"""No field is dropped silently (issue 7, item 2): every field of a users body is
stored and returned, or accepted and ignored and documented so; ``status`` is a
presence change, stored, returned, filterable and published as a user event.

Unit: the service composed on the fake repository and a recording publisher.
Integration: the whole service on the real database and broker.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from clarion_devtools.helpers import random_ref, wait_until
from clarion_directory.app import Settings, compose
from clarion_directory.testing import (
    InMemoryUserRepository,
    RecordingUserEvents,
    in_memory,
)
from clarion_directory.users import service
from clarion_directory.users.models import UNSET_IGNORED, UNSETTABLE, UserCreate, UserUpdate
from clarion_shared.api import json_body
from clarion_shared.contracts.users_events import PresenceChanged, user_event_adapter
from clarion_shared.http import internal_headers
from clarion_shared.public import users as public
from clarion_shared.settings import InfraSettings
from clarion_shared.tail import TopicTail
from clarion_shared.topics import Topics

INTERNAL = internal_headers(Settings().internal_token)

# Every field of API.md's user a client gives, with a value other than its default.
STORED_ON_CREATE: dict[str, Any] = {
    "name": "Ada Lovelace",
    "avatar": "https://example.com/ada.png",
    "link": "https://example.com/ada",
    "role": "admin",
    "metadata": {"team": "core", "@private": {"email": "ada@example.com"}},
    "tags": ["vip", "beta"],
    "status": "online",
}
STORED_ON_UPDATE: dict[str, Any] = {
    "name": "Ada King",
    "avatar": "https://example.com/king.png",
    "link": "https://example.com/king",
    "role": "moderator",
    "metadata": {"team": "ops"},
    "tags": ["gold"],
    "status": "online",
}
# A value for each field Clarion accepts and ignores.
IGNORED_VALUES: dict[str, Any] = {
    "withAuthToken": True,
    "statusMessage": "at lunch",
    "lastActiveAt": 7,
    "createdAt": 1,
    "updatedAt": 2,
    "uid": "someone-else",
}


@pytest.fixture
def events() -> RecordingUserEvents:
    return RecordingUserEvents()


@pytest.fixture
def memory_app(memory_repo: InMemoryUserRepository, events: RecordingUserEvents) -> FastAPI:
    settings = Settings()
    return compose(settings, in_memory(settings, memory_repo, events))


@pytest_asyncio.fixture(loop_scope="session")
async def client(memory_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    base = f"http://directory/internal/apps/{random_ref('app')}"
    transport = httpx.ASGITransport(app=memory_app)
    async with httpx.AsyncClient(transport=transport, base_url=base, headers=INTERNAL) as http:
        yield http


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


def documented(model: type[public.UserCreate | public.UserUpdate]) -> dict[str, Any]:
    """The body's properties as the gateway documents them."""
    schema = json_body(model)["requestBody"]["content"]["application/json"]["schema"]
    properties: dict[str, Any] = schema["properties"]
    return properties


# ------------------------------------------------------------- stored and returned


@pytest.mark.parametrize("field", sorted(STORED_ON_CREATE))
async def test_each_create_field_is_stored_and_returned(
    client: httpx.AsyncClient, field: str
) -> None:
    value = STORED_ON_CREATE[field]
    body = {"uid": "ada", "name": "Ada", field: value}
    created = data(await client.post("/users", json=body))
    assert created[field] == value
    assert data(await client.get("/users/ada"))[field] == value
    assert field in documented(public.UserCreate)


@pytest.mark.parametrize("field", sorted(STORED_ON_UPDATE))
async def test_each_update_field_is_stored_and_returned(
    client: httpx.AsyncClient, field: str
) -> None:
    data(await client.post("/users", json={"uid": "ada", "name": "Ada"}))
    value = STORED_ON_UPDATE[field]
    updated = data(await client.put("/users/ada", json={field: value}))
    assert updated[field] == value
    assert data(await client.get("/users/ada"))[field] == value
    assert field in documented(public.UserUpdate)


async def test_each_import_field_is_stored_and_returned(client: httpx.AsyncClient) -> None:
    entry = {"uid": "ada", **STORED_ON_CREATE}
    result = data(await client.post("/users/import", json={"users": [entry]}))
    assert (result["created"], result["failed"]) == (1, [])
    got = data(await client.get("/users/ada"))
    assert {field: got[field] for field in STORED_ON_CREATE} == STORED_ON_CREATE
    # Imported again with other values: an update, every field applied.
    again = {"uid": "ada", **STORED_ON_UPDATE, "status": "offline"}
    data(await client.post("/users/import", json={"users": [again]}))
    got = data(await client.get("/users/ada"))
    assert {field: got[field] for field in again} == again


# ------------------------------------------------------------- accepted and ignored


@pytest.mark.parametrize("field", sorted(public.IGNORED_ON_CREATE))
async def test_each_ignored_create_field_is_accepted_not_stored_and_documented(
    client: httpx.AsyncClient, field: str
) -> None:
    created = data(await client.post("/users", json={"uid": "ada", "name": "Ada"}))
    with_field = {"uid": "bob", "name": "Ada", field: IGNORED_VALUES[field]}
    other = data(await client.post("/users", json=with_field))
    assert other["uid"] == "bob"
    assert field not in ("createdAt", "updatedAt") or other[field] != IGNORED_VALUES[field]
    assert other["lastActiveAt"] is None  # no presence given: none set, whatever was sent
    kept = {k: v for k, v in other.items() if k not in ("uid", "createdAt", "updatedAt")}
    assert kept == {k: v for k, v in created.items() if k in kept}
    imported = data(await client.post("/users/import", json={"users": [with_field | {"uid": "c"}]}))
    assert (imported["created"], imported["failed"]) == (1, [])
    description = documented(public.UserCreate)[field]["description"]
    assert description.startswith(public.IGNORED_NOTE), description


@pytest.mark.parametrize("field", sorted(public.IGNORED_ON_UPDATE))
async def test_each_ignored_update_field_is_accepted_not_stored_and_documented(
    client: httpx.AsyncClient, field: str
) -> None:
    before = data(await client.post("/users", json={"uid": "ada", "name": "Ada"}))
    after = data(await client.put("/users/ada", json={field: IGNORED_VALUES[field]}))
    assert after == before  # nothing changed: not even updatedAt
    assert data(await client.get("/users/ada")) == before
    assert (await client.get("/users/someone-else")).status_code == 404
    description = documented(public.UserUpdate)[field]["description"]
    assert description.startswith(public.IGNORED_NOTE), description


def test_the_directory_parses_what_the_documents_name() -> None:
    """The gateway's documents and the directory's parser list the same fields."""
    assert set(UserCreate.model_json_schema(by_alias=True)["properties"]) == set(
        documented(public.UserCreate)
    )
    assert set(UserUpdate.model_json_schema(by_alias=True)["properties"]) == set(
        documented(public.UserUpdate)
    )
    unset_items = documented(public.UserUpdate)["unset"]["items"]["enum"]
    assert set(unset_items) == set(UNSETTABLE + UNSET_IGNORED)


# ------------------------------------------------------------- status is presence


async def test_put_status_is_a_presence_change_stored_filterable_and_published(
    client: httpx.AsyncClient, events: RecordingUserEvents
) -> None:
    data(await client.post("/users", json={"uid": "ada", "name": "Ada"}))
    data(await client.post("/users", json={"uid": "bob", "name": "Bob"}))
    assert events.presences == []  # no status given: no presence announced
    updated = data(await client.put("/users/ada", json={"status": "online", "name": "Ada L"}))
    assert (updated["status"], updated["name"]) == ("online", "Ada L")
    assert updated["lastActiveAt"] == updated["updatedAt"]
    listed = await client.get("/users", params={"status": "online"})
    assert [u["uid"] for u in data(listed)] == ["ada"]
    assert [u["uid"] for u in data(await client.get("/users", params={"status": "offline"}))] == [
        "bob"
    ]
    [event] = events.presences
    app_id = str(client.base_url).rstrip("/").rsplit("/", 1)[1]
    assert event == PresenceChanged(
        app_id=app_id, uid="ada", status="online", occurred_at=updated["lastActiveAt"]
    )
    back = data(await client.put("/users/ada", json={"status": "offline"}))
    assert back["status"] == "offline"
    assert [e.status for e in events.presences] == ["online", "offline"]


async def test_the_published_event_applied_again_changes_nothing(
    client: httpx.AsyncClient, events: RecordingUserEvents, memory_repo: InMemoryUserRepository
) -> None:
    """The directory consumes ``clarion.users.events`` too, so it reads its own event."""
    data(await client.post("/users", json={"uid": "ada", "name": "Ada"}))
    updated = data(await client.put("/users/ada", json={"status": "online"}))
    await service.apply_user_event(memory_repo, events.presences[-1])
    assert data(await client.get("/users/ada")) == updated


async def test_create_and_import_with_status_publish_presence(
    client: httpx.AsyncClient, events: RecordingUserEvents
) -> None:
    created = data(
        await client.post("/users", json={"uid": "ada", "name": "A", "status": "online"})
    )
    assert (created["status"], created["lastActiveAt"]) == ("online", created["createdAt"])
    entries = [
        {"uid": "bob", "name": "B", "status": "online"},
        {"uid": "cy", "name": "C"},
        {"uid": "dee", "name": "D", "status": "offline"},
        {"uid": "eve", "name": "E", "status": "away"},
    ]
    result = data(await client.post("/users/import", json={"users": entries}))
    assert (result["created"], [f["index"] for f in result["failed"]]) == (3, [3])
    assert "status" in result["failed"][0]["message"]
    assert [(e.uid, e.status) for e in events.presences] == [
        ("ada", "online"),
        ("bob", "online"),
        ("dee", "offline"),
    ]
    assert data(await client.get("/users/cy"))["lastActiveAt"] is None
    assert data(await client.get("/users/bob"))["status"] == "online"


@pytest.mark.parametrize("status", [None, "away", "ONLINE", 1])
async def test_a_status_that_is_not_a_presence_is_400(
    client: httpx.AsyncClient, events: RecordingUserEvents, status: Any
) -> None:
    data(await client.post("/users", json={"uid": "ada", "name": "Ada"}))
    response = await client.put("/users/ada", json={"status": status})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "ERR_VALIDATION"
    assert "status" in json.dumps(response.json()["error"])
    bad_create = await client.post("/users", json={"uid": "bob", "name": "B", "status": status})
    assert bad_create.status_code == 400, bad_create.text
    assert events.presences == []


async def test_a_presence_the_broker_refuses_is_503_and_the_retry_publishes(
    client: httpx.AsyncClient, events: RecordingUserEvents
) -> None:
    data(await client.post("/users", json={"uid": "ada", "name": "Ada"}))
    events.fail = True
    refused = await client.put("/users/ada", json={"status": "online"})
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "ERR_UNAVAILABLE"
    assert data(await client.get("/users/ada"))["status"] == "online"  # stored
    events.fail = False
    data(await client.put("/users/ada", json={"status": "online"}))
    assert [(e.uid, e.status) for e in events.presences] == [("ada", "online")]


# ------------------------------------------------------------- CometChat's unset


async def test_unset_clears_the_fields_it_names(client: httpx.AsyncClient) -> None:
    data(await client.post("/users", json={"uid": "ada", **STORED_ON_CREATE}))
    unset = ["avatar", "link", "role", "metadata", "tags", "statusMessage"]
    cleared = data(await client.put("/users/ada", json={"unset": unset}))
    assert (cleared["avatar"], cleared["link"], cleared["role"]) == (None, None, "default")
    assert (cleared["metadata"], cleared["tags"]) == ({}, [])
    assert cleared["name"] == STORED_ON_CREATE["name"]
    # A field given beside unset wins over it.
    kept = data(await client.put("/users/ada", json={"unset": ["avatar"], "avatar": "a.png"}))
    assert kept["avatar"] == "a.png"


@pytest.mark.parametrize("unset", [["name"], ["status"], ["uid"], "avatar", [1]])
async def test_unset_of_a_field_that_cannot_be_cleared_is_400(
    client: httpx.AsyncClient, unset: Any
) -> None:
    data(await client.post("/users", json={"uid": "ada", "name": "Ada"}))
    response = await client.put("/users/ada", json={"unset": unset})
    assert response.status_code == 400, response.text
    assert "unset" in json.dumps(response.json()["error"])


# ------------------------------------------------------------- real database and broker


@pytest.mark.integration
async def test_real_put_status_is_stored_filterable_and_published_on_the_users_topic(
    real_app: FastAPI, infra_settings: InfraSettings, topics: Topics
) -> None:
    app_id = random_ref("app")
    seen: list[PresenceChanged] = []

    def on_record(value: bytes) -> None:
        event = user_event_adapter.validate_json(value)
        if isinstance(event, PresenceChanged) and event.app_id == app_id:
            seen.append(event)

    tail = TopicTail(infra_settings.kafka_bootstrap_servers, topics.users_events, on_record)
    await tail.start()
    base = f"http://directory/internal/apps/{app_id}"
    transport = httpx.ASGITransport(app=real_app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=base, headers=INTERNAL) as http:
            data(await http.post("/users", json={"uid": "ada", "name": "Ada"}))
            data(await http.post("/users", json={"uid": "bob", "name": "Bob"}))
            updated = data(await http.put("/users/ada", json={"status": "online"}))
            assert updated["status"] == "online"
            assert data(await http.get("/users/ada"))["status"] == "online"
            online = data(await http.get("/users", params={"status": "online"}))
            assert [u["uid"] for u in online] == ["ada"]
            await wait_until(lambda: _first(seen), timeout_s=30, what="the presence event")
            assert seen[0] == PresenceChanged(
                app_id=app_id, uid="ada", status="online", occurred_at=updated["lastActiveAt"]
            )
    finally:
        await tail.stop()


async def _first(seen: list[PresenceChanged]) -> PresenceChanged | None:
    return seen[0] if seen else None
