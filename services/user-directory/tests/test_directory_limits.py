"""Limits of a user's metadata (size and key count), over HTTP, in imports and in user
events, and the lookup reply's byte budget.

Finding 5 of issue 6: a user with 400,000 metadata keys (6.5 MB) was stored, and every
users-list page holding it weighed 6.5 MB. It is now refused, on the fake repository and
on the whole service on the real database.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from clarion_devtools.helpers import random_ref
from clarion_directory.app import Settings, compose
from clarion_directory.testing import InMemoryUserRepository, in_memory
from clarion_directory.users import service
from clarion_directory.users.domain import (
    PRIVATE_KEY,
    REPLY_BUDGET_BYTES,
    InvalidEvent,
    MetadataLimits,
    User,
    count_keys,
    metadata_problem,
    resolved,
)
from clarion_shared.contracts.users_events import UserUpserted
from clarion_shared.http import internal_headers
from clarion_shared.strict_input import DEFAULT_MAX_BODY_BYTES

INTERNAL = internal_headers(Settings().internal_token)


@pytest.fixture(params=["memory", pytest.param("real", marks=pytest.mark.integration)])
def service_app(request: pytest.FixtureRequest) -> FastAPI:
    if request.param == "real":
        app: FastAPI = request.getfixturevalue("real_app")
        return app
    settings = Settings()
    return compose(settings, in_memory(settings))


def _client(app: FastAPI) -> httpx.AsyncClient:
    base = f"http://directory/internal/apps/{random_ref('app')}"
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=base, headers=INTERNAL
    )


@pytest_asyncio.fixture(loop_scope="session")
async def client(service_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(service_app) as http:
        yield http


def _refused_naming_metadata(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text[:500]
    error = response.json()["error"]
    assert error["code"] == "ERR_VALIDATION"
    assert error["details"][0]["field"] == "metadata"
    message: str = error["details"][0]["message"]
    return message


def _normal_metadata(i: int) -> dict[str, Any]:
    """What a real user carries: contact points, two push tokens, a few attributes."""
    return {
        PRIVATE_KEY: {
            "email": f"user{i}@example.com",
            "contactNumber": f"+1555{i:07d}",
            "pushTokens": [
                {"token": "f" * 160, "platform": "fcm"},
                {"token": "a" * 64, "platform": "apns"},
            ],
        },
        "plan": "pro",
        "locale": "en-GB",
        "company": {"name": "Example Ltd", "size": 250},
        "interests": ["news", "sport", "music"],
    }


async def test_a_user_with_400000_metadata_keys_is_refused_and_not_stored(
    client: httpx.AsyncClient,
) -> None:
    metadata = {f"k{i}": i for i in range(400_000)}
    body = json.dumps({"uid": "heavy", "name": "Heavy", "metadata": metadata})
    assert 5_000_000 < len(body) < DEFAULT_MAX_BODY_BYTES  # under the body limit
    response = await client.post(
        "/users", content=body, headers={"content-type": "application/json"}
    )
    assert "512 keys" in _refused_naming_metadata(response)
    assert (await client.get("/users/heavy")).status_code == 404
    # The list pages stay light: nothing of it was stored.
    await client.post("/users", json={"uid": "light", "name": "Light"})
    page = await client.get("/users")
    assert [u["uid"] for u in page.json()["data"]] == ["light"]
    assert len(page.content) < 2_000


async def test_metadata_over_the_byte_limit_or_nested_keys_is_refused(
    client: httpx.AsyncClient,
) -> None:
    big = {"notes": "x" * (32 * 1024)}
    assert "bytes" in _refused_naming_metadata(
        await client.post("/users", json={"uid": "big", "name": "B", "metadata": big})
    )
    nested = {"a": {f"k{i}": {"v": i} for i in range(300)}}  # 601 keys at three depths
    assert "keys" in _refused_naming_metadata(
        await client.post("/users", json={"uid": "nested", "name": "N", "metadata": nested})
    )
    # An update is held to the same limits, and changes nothing when refused.
    created = await client.post(
        "/users", json={"uid": "u1", "name": "U", "metadata": _normal_metadata(1)}
    )
    assert created.status_code == 200, created.text
    _refused_naming_metadata(await client.put("/users/u1", json={"metadata": big, "name": "Z"}))
    stored = (await client.get("/users/u1")).json()["data"]
    assert (stored["name"], stored["metadata"]) == ("U", _normal_metadata(1))


async def test_an_import_fails_only_the_entry_over_the_limit(client: httpx.AsyncClient) -> None:
    users: list[dict[str, Any]] = [
        {"uid": f"imp-{i}", "name": f"User {i}", "metadata": _normal_metadata(i)}
        for i in range(1_000)
    ]
    users[7]["metadata"] = {f"k{i}": i for i in range(600)}
    users[500]["metadata"] = {"blob": "y" * 40_000}
    body = json.dumps({"users": users})
    assert len(body) < DEFAULT_MAX_BODY_BYTES
    response = await client.post(
        "/users/import", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text[:500]
    result = response.json()["data"]
    assert (result["created"], result["updated"]) == (998, 0)
    assert [(f["index"], f["uid"], f["code"]) for f in result["failed"]] == [
        (7, "imp-7", "ERR_VALIDATION"),
        (500, "imp-500", "ERR_VALIDATION"),
    ]
    assert all(f["message"].startswith("metadata: ") for f in result["failed"])
    assert (await client.get("/users/imp-7")).status_code == 404
    assert (await client.get("/users/imp-8")).status_code == 200


async def test_a_normal_1000_user_import_fits_the_body_limit() -> None:
    settings = Settings()
    app = compose(settings, in_memory(settings))
    users = [
        {
            "uid": f"user-{i:04d}",
            "name": f"Customer number {i}",
            "avatar": f"https://cdn.example.com/avatars/{i}.png",
            "link": f"https://example.com/u/{i}",
            "role": "customer",
            "tags": ["beta", "emea"],
            "metadata": _normal_metadata(i),
        }
        for i in range(1_000)
    ]
    body = json.dumps({"users": users})
    assert len(body) < DEFAULT_MAX_BODY_BYTES / 4
    async with _client(app) as http:
        response = await http.post(
            "/users/import", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 200, response.text[:500]
    assert response.json()["data"] == {"created": 1_000, "updated": 0, "failed": []}


async def test_the_limits_are_the_settings() -> None:
    settings = Settings(metadata_max_keys=2, metadata_max_bytes=100)
    app = compose(settings, in_memory(settings))
    async with _client(app) as http:
        ok = await http.post("/users", json={"uid": "a", "name": "A", "metadata": {"x": 1}})
        assert ok.status_code == 200, ok.text
        assert "2 keys" in _refused_naming_metadata(
            await http.post(
                "/users", json={"uid": "b", "name": "B", "metadata": {"x": 1, "y": 2, "z": 3}}
            )
        )
        assert "limit of 100" in _refused_naming_metadata(
            await http.post("/users", json={"uid": "c", "name": "C", "metadata": {"x": "y" * 99}})
        )


async def test_a_user_event_over_the_limit_can_never_apply(
    memory_repo: InMemoryUserRepository,
) -> None:
    event = UserUpserted(
        app_id="app",
        uid="u1",
        name="U",
        metadata={f"k{i}": i for i in range(600)},
        occurred_at=1,
    )
    with pytest.raises(InvalidEvent, match="metadata"):
        await service.apply_user_event(memory_repo, event)
    assert await memory_repo.get("app", "u1") is None


def test_keys_are_counted_at_every_depth_and_counting_stops_early() -> None:
    assert count_keys({"a": 1, "b": {"c": [{"d": 1}, {"e": 2}]}}, 100) == 5
    assert count_keys({f"k{i}": i for i in range(10_000)}, 10) == 10_000  # one object
    assert count_keys([{f"k{i}": i} for i in range(10_000)], 10) == 11
    limits = MetadataLimits(max_bytes=1_000, max_keys=3)
    assert metadata_problem({"a": 1, "b": 2, "c": 3}, limits) is None
    assert metadata_problem({"a": {"b": {"c": {"d": 1}}}}, limits) is not None


def test_a_lookup_reply_leaves_out_what_delivery_does_not_need_to_fit() -> None:
    """1,000 users with many long tags: metadata cut to ``@private`` is not enough,
    so avatars, links and tags go too; contact points stay."""
    users = [
        User(
            app_id="app",
            uid=f"u{i}",
            name=f"User {i}",
            avatar="https://cdn.example.com/" + "a" * 500,
            link="https://example.com/" + "l" * 500,
            tags=[f"tag-{t}-" + "t" * 80 for t in range(10)],
            metadata={PRIVATE_KEY: {"email": f"u{i}@example.com"}, "notes": "n" * 100},
            created_at=1,
            updated_at=1,
        )
        for i in range(1_000)
    ]
    reply = resolved("r1", "app", [u.uid for u in users], users)
    assert len(reply.to_bytes()) <= REPLY_BUDGET_BYTES
    assert [p.uid for p in reply.users] == [u.uid for u in users]
    assert reply.users[3].metadata == {PRIVATE_KEY: {"email": "u3@example.com"}}
    assert (reply.users[3].avatar, reply.users[3].tags) == (None, [])
