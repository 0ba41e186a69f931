"""The webhook-emitter's internal HTTP API is for the gateway only (issue 6): every path under
``/internal`` needs the services' shared secret (``CLARION_INTERNAL_TOKEN``), checked by
``clarion_shared.http``; health, readiness and metrics stay open."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from pydantic import ValidationError

from clarion_shared.http import INTERNAL_TOKEN_HEADER, internal_headers
from clarion_shared.settings import DEV_INTERNAL_TOKEN
from clarion_webhooks.app import Adapters, Settings, compose
from clarion_webhooks.testing import InMemoryEndpointRepository

# It serves no internal route yet: the guard stands before any it will have.
INTERNAL_PATH = "/internal/apps/app1/webhooks"
# Not found, with the secret.
WITH_TOKEN = 404


def service(settings: Settings) -> FastAPI:
    """The service composed on the fake repository (nothing started); readiness always passes."""
    app = compose(
        settings, replace(Adapters.connect(settings), endpoints=InMemoryEndpointRepository())
    )

    async def ready() -> bool:
        return True

    app.state.readiness = {"fake": ready}
    return app


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=service(Settings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://webhooks") as client:
        yield client


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert (error["code"], error["source"]) == ("ERR_UNAUTHORIZED", "clarion")
    assert error["message"]
    assert INTERNAL_TOKEN_HEADER in error["devMessage"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {INTERNAL_TOKEN_HEADER: "wrong"},
        {INTERNAL_TOKEN_HEADER: ""},
        {"authorization": "Bearer x"},
    ],
)
async def test_internal_routes_refuse_a_caller_without_the_secret(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    assert_unauthorized(await http.get(INTERNAL_PATH, headers=headers))
    assert_unauthorized(await http.post(INTERNAL_PATH, json={"any": "body"}, headers=headers))
    # Unknown internal paths too: nothing under /internal answers a stranger.
    assert_unauthorized(await http.get("/internal/anything", headers=headers))
    assert_unauthorized(await http.get("/%69nternal/anything", headers=headers))


async def test_internal_routes_answer_the_gateway_as_before(http: httpx.AsyncClient) -> None:
    token = internal_headers(Settings().internal_token)
    response = await http.get(INTERNAL_PATH, headers=token)
    assert response.status_code == WITH_TOKEN, response.text
    # No slash redirect (its Location would name this process): not found.
    slashed = await http.get(f"{INTERNAL_PATH}/", headers=token)
    assert slashed.status_code == 404
    assert "location" not in slashed.headers


async def test_health_readiness_and_metrics_stay_open(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json()["status"] == "ok"
    assert (await http.get("/readyz")).status_code == 200
    assert (await http.get("/metrics")).status_code == 200


async def test_the_secret_is_read_from_clarion_internal_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLARION_INTERNAL_TOKEN", "s3cret-from-env")
    monkeypatch.setenv("CLARION_WEBHOOKS_INTERNAL_TOKEN", "not-this-one")
    settings = Settings()
    assert settings.internal_token == "s3cret-from-env"
    transport = httpx.ASGITransport(app=service(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://webhooks") as client:
        for wrong in (DEV_INTERNAL_TOKEN, "not-this-one"):
            assert_unauthorized(await client.get(INTERNAL_PATH, headers=internal_headers(wrong)))
        right = await client.get(INTERNAL_PATH, headers=internal_headers("s3cret-from-env"))
        assert right.status_code == WITH_TOKEN


def test_production_refuses_the_default_secret() -> None:
    with pytest.raises(ValidationError, match="CLARION_INTERNAL_TOKEN"):
        Settings(environment="production")
    assert Settings(environment="production", internal_token="t0ken").internal_token == "t0ken"
