"""``GET /internal/apps/{app_id}/uids/{uid}``: the gateway's question before it passes on
a feed request for ``onbehalfof: uid`` (issue 6, item 8). 204 when the user exists, the
public 404 ``ERR_USER_NOT_FOUND`` envelope when not; nothing of the user goes back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from clarion_directory.app import Settings, compose
from clarion_directory.testing import InMemoryUserRepository, in_memory
from clarion_shared.http import internal_headers

INTERNAL = internal_headers(Settings().internal_token)


@pytest_asyncio.fixture
async def http(memory_repo: InMemoryUserRepository) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings()
    app = compose(settings, in_memory(settings, memory_repo))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://directory/internal/apps", headers=INTERNAL
    ) as client:
        created = await client.post("/app1/users", json={"uid": "ann", "name": "Ann"})
        assert created.status_code == 200, created.text
        yield client


async def test_a_user_of_the_app_is_204_with_no_body(http: httpx.AsyncClient) -> None:
    response = await http.get("/app1/uids/ann")
    assert response.status_code == 204
    assert response.content == b""


async def test_an_unknown_uid_is_404_user_not_found(http: httpx.AsyncClient) -> None:
    for path in ("/app1/uids/bob", "/app2/uids/ann", "/app1/uids/a%20b"):
        response = await http.get(path)
        assert response.status_code == 404, path
        error = response.json()["error"]
        assert (error["code"], error["source"]) == ("ERR_USER_NOT_FOUND", "clarion")


async def test_a_deleted_user_is_unknown(http: httpx.AsyncClient) -> None:
    assert (await http.delete("/app1/users/ann")).status_code == 200
    assert (await http.get("/app1/uids/ann")).status_code == 404


async def test_the_check_needs_the_internal_token(http: httpx.AsyncClient) -> None:
    response = await http.get("/app1/uids/ann", headers={"X-Clarion-Internal-Token": "wrong"})
    assert response.status_code == 401


async def test_the_check_is_not_under_users(http: httpx.AsyncClient) -> None:
    """The gateway passes ``/v3/users/...`` on to ``/users/...``: no public path leads here."""
    assert (await http.get("/app1/users/ann/exists")).status_code == 404
    assert (await http.get("/app1/users/ann")).json()["data"]["uid"] == "ann"
