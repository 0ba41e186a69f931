"""The users API refuses what the database cannot store (issue 6, finding 3).

A NUL in a user's name (create, update, import), an escaped lone surrogate in its
metadata, ``%00`` in a uid, ``createdAfter`` past the 64-bit integers: each used to
answer 500 on the real database; each is 400 ``ERR_VALIDATION`` naming the field, on
the service composed on the fake repository (unit) and built on the real database
(integration).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from clarion_devtools.helpers import random_ref
from clarion_directory.app import Settings, compose
from clarion_directory.testing import in_memory
from clarion_shared.http import internal_headers

JSON = {"content-type": "application/json"}


@pytest.fixture
def memory_directory() -> FastAPI:
    settings = Settings()
    return compose(settings, in_memory(settings))


@pytest.fixture(params=["memory", pytest.param("real", marks=pytest.mark.integration)])
def directory(request: pytest.FixtureRequest) -> FastAPI:
    name = "memory_directory" if request.param == "memory" else "real_app"
    app: FastAPI = request.getfixturevalue(name)
    return app


@pytest_asyncio.fixture(loop_scope="session")
async def users(directory: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client on a fresh app, which holds one user ``ann``."""
    base = f"http://directory/internal/apps/{random_ref('app')}"
    transport = httpx.ASGITransport(app=directory)
    headers = internal_headers(Settings().internal_token)
    async with httpx.AsyncClient(transport=transport, base_url=base, headers=headers) as client:
        created = await client.post("/users", json={"uid": "ann", "name": "Ann"})
        assert created.status_code == 200, created.text
        yield client


CASES = [
    ("POST", "/users", '{"uid": "bob", "name": "B\\u0000ob"}', "name"),
    ("PUT", "/users/ann", '{"name": "A\\u0000nn"}', "name"),
    ("POST", "/users/import", '{"users": [{"uid": "bob", "name": "B\\u0000ob"}]}', "users.0.name"),
    ("POST", "/users", '{"uid": "bob", "name": "Bob", "metadata": {"k": "\\ud800"}}', "metadata.k"),
    ("PUT", "/users/ann", '{"metadata": {"nested": {"\\udfff": 1}}}', "metadata.nested.\\udfff"),
    ("POST", "/users", '{"uid": "bob", "name": "Bob", "metadata": {"n": 1e999}}', "metadata.n"),
    (
        "POST",
        "/users",
        '{"uid": "bob", "name": "Bob", "metadata": {"n": 9007199254740992}}',
        "metadata.n",
    ),
    ("POST", "/users", '{"uid": "bob", "name": "Bob", "uid": "eve"}', "uid"),
    ("GET", "/users/an%00n", None, "uid"),
    ("DELETE", "/users/an%00n", None, "uid"),
    ("GET", "/users?createdAfter=9223372036854775808", None, "createdAfter"),
    ("GET", "/users?createdBefore=9223372036854775808", None, "createdBefore"),
    ("GET", "/users?searchKey=a%00", None, "searchKey"),
    ("GET", "/users?page=9223372036854775807", None, "page"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), CASES)
async def test_unstorable_input_is_400_naming_the_field(
    users: httpx.AsyncClient, method: str, path: str, body: str | None, field: str
) -> None:
    content = body.encode() if body is not None else None
    response = await users.request(
        method, path, content=content, headers=JSON if body is not None else None
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "ERR_VALIDATION"
    assert field in [d["field"] for d in error["details"]], error
    # Nothing was stored or changed.
    ann = await users.get("/users/ann")
    assert ann.json()["data"]["name"] == "Ann"
    assert (await users.get("/users/bob")).status_code == 404


async def test_the_largest_safe_numbers_pass(users: httpx.AsyncClient) -> None:
    listed = await users.get("/users", params={"createdAfter": 0, "createdBefore": 2**53 - 1})
    assert listed.status_code == 200, listed.text
    assert [u["uid"] for u in listed.json()["data"]] == ["ann"]
    updated = await users.put(
        "/users/ann", json={"metadata": {"big": 2**53 - 1, "small": -(2**53 - 1)}}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["data"]["metadata"] == {"big": 2**53 - 1, "small": -(2**53 - 1)}
