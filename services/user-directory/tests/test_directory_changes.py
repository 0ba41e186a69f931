"""Every write of a user is announced on ``clarion.users.changes`` before the call
answers (the dispatchers' caches of profiles drop those users): create, update,
delete, import, and the user events of other services (``test_directory_kafka``).

Unit: the service composed on the fake repository and recording publishers.
Integration: the whole service on the real database and broker, read from the topic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from clarion_devtools.helpers import random_ref, wait_until
from clarion_directory.app import Settings, compose
from clarion_directory.testing import (
    InMemoryUserRepository,
    RecordingUserChanges,
    RecordingUserEvents,
    in_memory,
)
from clarion_directory.users.domain import users_changed
from clarion_shared.contracts.users_changes import MAX_CHANGED_UIDS, UsersChanged
from clarion_shared.http import internal_headers
from clarion_shared.settings import InfraSettings
from clarion_shared.tail import TopicTail
from clarion_shared.topics import Topics

INTERNAL = internal_headers(Settings().internal_token)


@dataclass
class Directory:
    http: httpx.AsyncClient
    app_id: str
    changes: RecordingUserChanges
    events: RecordingUserEvents
    repo: InMemoryUserRepository

    def announced(self) -> list[list[str]]:
        """The uids of each record published, in order (all of this app)."""
        assert all(change.app_id == self.app_id for change in self.changes.changes)
        return [change.uids for change in self.changes.changes]


@pytest_asyncio.fixture(loop_scope="session")
async def directory(memory_repo: InMemoryUserRepository) -> AsyncIterator[Directory]:
    settings = Settings()
    changes, events = RecordingUserChanges(), RecordingUserEvents()
    adapters = in_memory(settings, memory_repo, events, changes)
    app_id = random_ref("app")
    transport = httpx.ASGITransport(app=compose(settings, adapters))
    async with httpx.AsyncClient(
        transport=transport,
        base_url=f"http://directory/internal/apps/{app_id}",
        headers=INTERNAL,
    ) as http:
        yield Directory(http, app_id, changes, events, memory_repo)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_each_write_announces_its_user_once(directory: Directory) -> None:
    http = directory.http
    ok(await http.post("/users", json={"uid": "ada", "name": "Ada"}))
    assert directory.announced() == [["ada"]]
    ok(await http.put("/users/ada", json={"name": "Ada King"}))
    ok(await http.put("/users/ada", json={"status": "online"}))  # presence, announced too
    assert directory.announced() == [["ada"], ["ada"], ["ada"]]
    assert [e.uid for e in directory.events.presences] == ["ada"]
    ok(await http.delete("/users/ada"))
    assert directory.announced() == [["ada"], ["ada"], ["ada"], ["ada"]]
    stamps = [change.occurred_at for change in directory.changes.changes]
    assert stamps == sorted(stamps)
    assert stamps[0] > 0


async def test_reads_and_refused_writes_announce_nothing(directory: Directory) -> None:
    http = directory.http
    ok(await http.post("/users", json={"uid": "ada", "name": "Ada"}))
    directory.changes.changes.clear()
    ok(await http.get("/users/ada"))
    ok(await http.get("/users"))
    uid_check = f"http://directory/internal/apps/{directory.app_id}/uids/ada"
    assert (await http.get(uid_check)).status_code == 204
    refused(await http.put("/users/ada", json={"name": ""}), 400, "ERR_VALIDATION")
    refused(await http.post("/users", json={"uid": "no spaces"}), 400, "ERR_VALIDATION")
    refused(await http.put("/users/nobody", json={"name": "N"}), 404, "ERR_USER_NOT_FOUND")
    ok(await http.put("/users/ada", json={}))  # nothing to change: nothing written
    assert directory.announced() == []


async def test_an_import_is_one_record_of_every_user_it_wrote(directory: Directory) -> None:
    http = directory.http
    ok(await http.post("/users", json={"uid": "bob", "name": "Bob"}))
    directory.changes.changes.clear()
    entries = [
        {"uid": "ada", "name": "Ada"},
        {"uid": "bob", "name": "Bob 2"},  # updated
        {"uid": "no spaces", "name": "X"},  # refused: not written
        {"uid": "cy", "name": "Cy", "status": "online"},
    ]
    result = ok(await http.post("/users/import", json={"users": entries}))
    assert (result["created"], result["updated"], len(result["failed"])) == (2, 1, 1)
    assert directory.announced() == [["ada", "bob", "cy"]]


async def test_a_create_or_delete_whose_announcement_fails_is_503_and_the_retry_announces(
    directory: Directory,
) -> None:
    """The write is stored; the client's retry finds it done (409, 404) and still
    announces it, since a dispatcher may hold the uid as unknown, or the old profile."""
    http, changes = directory.http, directory.changes
    changes.fail = True
    refused(await http.post("/users", json={"uid": "ada", "name": "Ada"}), 503, "ERR_UNAVAILABLE")
    assert await directory.repo.get(directory.app_id, "ada") is not None  # stored
    changes.fail = False
    refused(
        await http.post("/users", json={"uid": "ada", "name": "Ada"}),
        409,
        "ERR_UID_ALREADY_EXISTS",
    )
    assert directory.announced() == [["ada"]]

    changes.fail = True
    refused(await http.delete("/users/ada"), 503, "ERR_UNAVAILABLE")
    assert await directory.repo.get(directory.app_id, "ada") is None  # deleted
    changes.fail = False
    refused(await http.delete("/users/ada"), 404, "ERR_USER_NOT_FOUND")
    assert directory.announced() == [["ada"], ["ada"]]


async def test_an_update_or_import_whose_announcement_fails_is_503_and_the_retry_announces(
    directory: Directory,
) -> None:
    http, changes = directory.http, directory.changes
    ok(await http.post("/users", json={"uid": "ada", "name": "Ada"}))
    changes.changes.clear()
    changes.fail = True
    refused(await http.put("/users/ada", json={"name": "Ada K"}), 503, "ERR_UNAVAILABLE")
    refused(
        await http.post("/users/import", json={"users": [{"uid": "bob", "name": "B"}]}),
        503,
        "ERR_UNAVAILABLE",
    )
    assert ok(await http.get("/users/ada"))["name"] == "Ada K"  # stored
    changes.fail = False
    ok(await http.put("/users/ada", json={"name": "Ada K"}))
    ok(await http.post("/users/import", json={"users": [{"uid": "bob", "name": "B"}]}))
    assert directory.announced() == [["ada"], ["bob"]]


def test_changes_are_cut_into_records_of_at_most_1000_uids_each_uid_once() -> None:
    uids = [f"u{i}" for i in range(2500)] + ["u0", "u1"]
    records = users_changed("app", uids, 7)
    assert [len(r.uids) for r in records] == [MAX_CHANGED_UIDS, MAX_CHANGED_UIDS, 500]
    assert [uid for r in records for uid in r.uids] == uids[:2500]
    assert {(r.app_id, r.occurred_at) for r in records} == {("app", 7)}
    assert users_changed("app", [], 7) == []


# ------------------------------------------------------------- real database and broker


@pytest.mark.integration
async def test_real_writes_are_announced_on_the_changes_topic_keyed_by_app(
    real_app: FastAPI, infra_settings: InfraSettings, topics: Topics
) -> None:
    app_id = random_ref("app")
    seen: list[UsersChanged] = []

    def on_record(value: bytes) -> None:
        change = UsersChanged.model_validate_json(value)
        if change.app_id == app_id:
            seen.append(change)

    tail = TopicTail(infra_settings.kafka_bootstrap_servers, topics.users_changes, on_record)
    await tail.start()
    transport = httpx.ASGITransport(app=real_app)
    base = f"http://directory/internal/apps/{app_id}"
    try:
        async with httpx.AsyncClient(transport=transport, base_url=base, headers=INTERNAL) as http:
            ok(await http.post("/users", json={"uid": "ada", "name": "Ada"}))
            ok(await http.put("/users/ada", json={"name": "Ada K"}))
            users = [{"uid": f"u{i}", "name": "U"} for i in range(3)]
            ok(await http.post("/users/import", json={"users": users}))
            ok(await http.delete("/users/ada"))

            async def all_four() -> list[UsersChanged] | None:
                return seen if len(seen) >= 4 else None

            await wait_until(all_four, timeout_s=30, what="four changes")
    finally:
        await tail.stop()
    assert [change.uids for change in seen] == [["ada"], ["ada"], ["u0", "u1", "u2"], ["ada"]]
