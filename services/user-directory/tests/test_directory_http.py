"""The internal users API, as the gateway sees it: statuses, envelopes, error codes.

Runs against the service composed on the fake repository (unit) and against the whole
service built by ``app.build`` with its lifespan, on the real database and broker
(integration).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from clarion_devtools.helpers import random_ref
from clarion_directory.app import Settings, compose
from clarion_directory.testing import InMemoryUserRepository, in_memory
from clarion_shared.http import internal_headers

# What the gateway sends: the services' shared secret (the default, in these tests).
INTERNAL = internal_headers(Settings().internal_token)


@pytest.fixture
def memory_app(memory_repo: InMemoryUserRepository) -> FastAPI:
    """The service on the fake repository (its lifespan is not run: nothing starts)."""
    settings = Settings()
    return compose(settings, in_memory(settings, memory_repo))


@pytest.fixture(params=["memory", pytest.param("real", marks=pytest.mark.integration)])
def service(request: pytest.FixtureRequest) -> FastAPI:
    app: FastAPI = request.getfixturevalue(
        "memory_app" if request.param == "memory" else "real_app"
    )
    return app


@pytest_asyncio.fixture(loop_scope="session")
async def client(service: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client scoped to a fresh app id: ``/users`` is the app's users collection."""
    base = f"http://directory/internal/apps/{random_ref('app')}"
    transport = httpx.ASGITransport(app=service)
    async with httpx.AsyncClient(transport=transport, base_url=base, headers=INTERNAL) as http:
        yield http


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    assert body["code"] == code
    assert body["source"] == "clarion"
    assert body["message"]
    assert body["devMessage"]
    return body


async def test_create_returns_the_public_user(client: httpx.AsyncClient) -> None:
    body = {
        "uid": "alice",
        "name": "Alice",
        "avatar": "https://example.com/a.png",
        "metadata": {"@private": {"email": "alice@example.com"}, "plan": "pro"},
        "tags": ["vip"],
        "unknownField": "ignored",
    }
    user = data(await client.post("/users", json=body))
    assert set(user) == {
        "uid",
        "name",
        "avatar",
        "link",
        "role",
        "metadata",
        "tags",
        "status",
        "lastActiveAt",
        "createdAt",
        "updatedAt",
    }
    assert user["uid"] == "alice"
    assert user["link"] is None
    assert user["role"] == "default"
    assert user["status"] == "offline"
    assert user["lastActiveAt"] is None
    assert user["metadata"] == body["metadata"]
    assert isinstance(user["createdAt"], int)
    assert user["createdAt"] == user["updatedAt"]
    assert data(await client.get("/users/alice")) == user


async def test_create_refuses_a_taken_uid(client: httpx.AsyncClient) -> None:
    data(await client.post("/users", json={"uid": "alice", "name": "Alice"}))
    error(
        await client.post("/users", json={"uid": "alice", "name": "Other"}),
        409,
        "ERR_UID_ALREADY_EXISTS",
    )


@pytest.mark.parametrize(
    "body",
    [
        {"uid": "no spaces allowed"},
        {"uid": "no spaces allowed", "name": "A"},
        {"uid": "alice"},
        {"name": "Alice"},
        {"uid": "alice", "name": "A", "metadata": {"@private": "x"}},
        [],
    ],
)
async def test_create_refuses_bad_bodies(client: httpx.AsyncClient, body: Any) -> None:
    error(await client.post("/users", json=body), 400, "ERR_VALIDATION")


async def test_create_refuses_a_body_that_is_not_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/users", content=b"{not json", headers={"content-type": "application/json"}
    )
    error(response, 400, "ERR_VALIDATION")


async def test_unknown_users_are_404(client: httpx.AsyncClient) -> None:
    for uid in ("nobody", "not%20a%20uid"):
        error(await client.get(f"/users/{uid}"), 404, "ERR_USER_NOT_FOUND")
        error(await client.put(f"/users/{uid}", json={"name": "X"}), 404, "ERR_USER_NOT_FOUND")
        error(await client.delete(f"/users/{uid}"), 404, "ERR_USER_NOT_FOUND")
    error(await client.put("/users/nobody", json={}), 404, "ERR_USER_NOT_FOUND")


async def test_update_changes_the_given_fields(client: httpx.AsyncClient) -> None:
    created = data(
        await client.post(
            "/users",
            json={"uid": "bob", "name": "Bob", "avatar": "a.png", "role": "admin", "tags": ["x"]},
        )
    )
    updated = data(
        await client.put(
            "/users/bob", json={"name": "Robert", "avatar": None, "metadata": {"k": [1]}}
        )
    )
    assert (updated["name"], updated["avatar"], updated["metadata"]) == ("Robert", None, {"k": [1]})
    assert (updated["role"], updated["tags"]) == ("admin", ["x"])
    assert updated["createdAt"] == created["createdAt"]
    assert updated["updatedAt"] >= created["updatedAt"]
    assert data(await client.get("/users/bob")) == updated
    assert data(await client.put("/users/bob", json={})) == updated
    error(await client.put("/users/bob", json={"name": None}), 400, "ERR_VALIDATION")
    error(await client.put("/users/bob", json={"tags": "x"}), 400, "ERR_VALIDATION")


async def test_delete(client: httpx.AsyncClient) -> None:
    data(await client.post("/users", json={"uid": "carol", "name": "Carol"}))
    assert data(await client.delete("/users/carol")) == {"success": True}
    error(await client.get("/users/carol"), 404, "ERR_USER_NOT_FOUND")
    error(await client.delete("/users/carol"), 404, "ERR_USER_NOT_FOUND")


async def test_apps_do_not_see_each_others_users(
    client: httpx.AsyncClient, service: FastAPI
) -> None:
    data(await client.post("/users", json={"uid": "dave", "name": "Dave"}))
    transport = httpx.ASGITransport(app=service)
    other_base = f"http://directory/internal/apps/{random_ref('app')}"
    async with httpx.AsyncClient(
        transport=transport, base_url=other_base, headers=INTERNAL
    ) as other:
        error(await other.get("/users/dave"), 404, "ERR_USER_NOT_FOUND")
        assert data(await other.get("/users")) == []


async def test_list_pages_filters_and_meta(client: httpx.AsyncClient) -> None:
    for uid, name, role in [
        ("u1", "Alpha", "admin"),
        ("u2", "beta", "default"),
        ("u3", "Alpine", "default"),
    ]:
        data(await client.post("/users", json={"uid": uid, "name": name, "role": role}))
    response = await client.get("/users", params={"perPage": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [u["uid"] for u in body["data"]] == ["u1", "u2"]
    assert body["meta"]["pagination"] == {
        "total": 3,
        "count": 2,
        "per_page": 2,
        "current_page": 1,
        "total_pages": 2,
    }
    second = (await client.get("/users", params={"perPage": 2, "page": 2})).json()
    assert [u["uid"] for u in second["data"]] == ["u3"]
    assert second["meta"]["pagination"]["current_page"] == 2
    beyond = (await client.get("/users", params={"page": 9})).json()
    assert beyond["data"] == []
    assert beyond["meta"]["pagination"]["total"] == 3

    async def uids(params: dict[str, Any]) -> list[str]:
        return [u["uid"] for u in data(await client.get("/users", params=params))]

    assert await uids({"searchKey": "ALP"}) == ["u1", "u3"]
    assert await uids({"searchKey": "u", "searchIn": "name"}) == []
    assert await uids({"roles": "admin,moderator"}) == ["u1"]
    assert await uids({"role": "default", "searchKey": "al"}) == ["u3"]
    assert await uids({"status": "available"}) == []
    assert await uids({"status": "offline", "unknownParam": "x"}) == ["u1", "u2", "u3"]
    assert await uids({"createdBefore": 0}) == []
    assert await uids({"tags": "none"}) == []


@pytest.mark.parametrize(
    "params",
    [
        {"perPage": 101},
        {"perPage": 0},
        {"page": 0},
        {"page": "first"},
        {"status": "away"},
        {"searchIn": "email"},
        {"createdAfter": "today"},
    ],
)
async def test_list_refuses_bad_parameters(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    body = error(await client.get("/users", params=params), 400, "ERR_VALIDATION")
    assert body["details"][0]["field"] == next(iter(params))


async def test_list_accepts_the_largest_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/users", params={"perPage": 100})
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["pagination"]["per_page"] == 100


async def test_import_upserts_and_reports_failures_by_index(client: httpx.AsyncClient) -> None:
    data(await client.post("/users", json={"uid": "old", "name": "Old", "role": "admin"}))
    result = data(
        await client.post(
            "/users/import",
            json={
                "users": [
                    {"uid": "old", "name": "Renamed"},
                    {"uid": "new1", "name": "New One", "tags": ["t"]},
                    {"uid": "bad uid", "name": "Bad"},
                    {"uid": "nameless"},
                    {"uid": "new1", "name": "Twice"},
                    42,
                    {"uid": "new2", "name": "New Two", "whatever": True},
                ]
            },
        )
    )
    assert (result["created"], result["updated"]) == (2, 1)
    assert [(f["index"], f["uid"], f["code"]) for f in result["failed"]] == [
        (2, "bad uid", "ERR_VALIDATION"),
        (3, "nameless", "ERR_VALIDATION"),
        (4, "new1", "ERR_VALIDATION"),
        (5, None, "ERR_VALIDATION"),
    ]
    assert all(f["message"] for f in result["failed"])
    old = data(await client.get("/users/old"))
    assert (old["name"], old["role"]) == ("Renamed", "admin")
    assert data(await client.get("/users/new1"))["tags"] == ["t"]
    again = data(await client.post("/users/import", json={"users": [{"uid": "new2", "name": "N"}]}))
    assert again == {"created": 0, "updated": 1, "failed": []}


@pytest.mark.parametrize(
    "body",
    [{"users": []}, {"users": [{"uid": "a", "name": "A"}] * 1001}, {"users": "a"}, {}],
)
async def test_import_refuses_bad_requests(client: httpx.AsyncClient, body: Any) -> None:
    error(await client.post("/users/import", json=body), 400, "ERR_VALIDATION")


async def test_import_takes_a_thousand_users(client: httpx.AsyncClient) -> None:
    users = [{"uid": f"bulk{i}", "name": f"Bulk {i}"} for i in range(1000)]
    result = data(await client.post("/users/import", json={"users": users}))
    assert result == {"created": 1000, "updated": 0, "failed": []}
    listed = (await client.get("/users", params={"searchKey": "bulk99", "perPage": 100})).json()
    assert listed["meta"]["pagination"]["total"] == 11


@pytest.mark.integration
async def test_health_and_readiness(real_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=real_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://directory") as http:
        assert (await http.get("/healthz")).json()["status"] == "ok"
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"kafka": True, "kafka_groups": True, "mongo": True}
