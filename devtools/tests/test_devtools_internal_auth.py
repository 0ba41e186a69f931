"""Every service's internal HTTP API is for the gateway only (issue 6): every path under
``/internal`` needs the services' shared secret (``CLARION_INTERNAL_TOKEN``), checked by
``clarion_shared.http``; health, readiness and metrics stay open.

One suite, run against each service that serves ``/internal`` (the gateway forwards to
them), each composed on its fakes with nothing started.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from pydantic import ValidationError

import clarion_directory.app as directory
import clarion_dispatcher.app as dispatcher
import clarion_webhooks.app as webhooks
from clarion_directory.testing import InMemoryUserRepository
from clarion_dispatcher.testing import FakeDirectory, InMemoryFeed, InMemoryNotifications
from clarion_shared.http import INTERNAL_TOKEN_HEADER, internal_headers
from clarion_shared.settings import DEV_INTERNAL_TOKEN, ServiceSettings
from clarion_webhooks.testing import InMemoryEndpointRepository


@dataclass(frozen=True)
class Service:
    name: str
    settings: Callable[..., ServiceSettings]
    build: Callable[[Any], FastAPI]  # the service composed on its fakes
    env_prefix: str
    internal_path: str  # what the gateway forwards to
    with_token: int  # its status with the secret


def _dispatcher(settings: dispatcher.Settings) -> FastAPI:
    adapters = replace(
        dispatcher.Adapters.connect(settings),
        directory=FakeDirectory(),
        notifications=InMemoryNotifications(),
        feed=InMemoryFeed(),
    )
    return dispatcher.compose(settings, adapters)


def _directory(settings: directory.Settings) -> FastAPI:
    adapters = replace(directory.Adapters.connect(settings), users=InMemoryUserRepository())
    return directory.compose(settings, adapters)


def _webhooks(settings: webhooks.Settings) -> FastAPI:
    adapters = replace(webhooks.Adapters.connect(settings), endpoints=InMemoryEndpointRepository())
    return webhooks.compose(settings, adapters)


SERVICES = [
    # A user's feed (an empty one) and the users of an app (an empty page).
    Service("dispatcher", dispatcher.Settings, _dispatcher, "CLARION_DISPATCHER_",
            "/internal/apps/app1/feed/alice", 200),
    Service("directory", directory.Settings, _directory, "CLARION_DIRECTORY_",
            "/internal/apps/app1/users", 200),
    # It serves no internal route yet: the guard stands before any it will have.
    Service("webhooks", webhooks.Settings, _webhooks, "CLARION_WEBHOOKS_",
            "/internal/apps/app1/webhooks", 404),
]  # fmt: skip


def app_of(service: Service, settings: ServiceSettings) -> FastAPI:
    """``service`` on ``settings``; readiness always passes."""
    app = service.build(settings)

    async def ready() -> bool:
        return True

    app.state.readiness = {"fake": ready}
    return app


@pytest.fixture(params=SERVICES, ids=[s.name for s in SERVICES])
def service(request: pytest.FixtureRequest) -> Service:
    found: Service = request.param
    return found


@pytest_asyncio.fixture
async def http(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_of(service, service.settings()))
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{service.name}") as client:
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
    http: httpx.AsyncClient, service: Service, headers: dict[str, str]
) -> None:
    path = service.internal_path
    assert_unauthorized(await http.get(path, headers=headers))
    assert_unauthorized(await http.post(path, json={"any": "body"}, headers=headers))
    # Unknown internal paths too: nothing under /internal answers a stranger.
    assert_unauthorized(await http.get("/internal/anything", headers=headers))
    assert_unauthorized(await http.get("/%69nternal/anything", headers=headers))


async def test_internal_routes_answer_the_gateway_as_before(
    http: httpx.AsyncClient, service: Service
) -> None:
    token = internal_headers(service.settings().internal_token)
    response = await http.get(service.internal_path, headers=token)
    assert response.status_code == service.with_token, response.text
    # No slash redirect (its Location would name this process): not found.
    slashed = await http.get(f"{service.internal_path}/", headers=token)
    assert slashed.status_code == 404
    assert "location" not in slashed.headers


async def test_health_readiness_and_metrics_stay_open(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json()["status"] == "ok"
    assert (await http.get("/readyz")).status_code == 200
    assert (await http.get("/metrics")).status_code == 200


async def test_the_secret_is_read_from_clarion_internal_token(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLARION_INTERNAL_TOKEN", "s3cret-from-env")
    monkeypatch.setenv(f"{service.env_prefix}INTERNAL_TOKEN", "not-this-one")
    settings = service.settings()
    assert settings.internal_token == "s3cret-from-env"
    transport = httpx.ASGITransport(app=app_of(service, settings))
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{service.name}") as client:
        path = service.internal_path
        for wrong in (DEV_INTERNAL_TOKEN, "not-this-one"):
            assert_unauthorized(await client.get(path, headers=internal_headers(wrong)))
        right = await client.get(path, headers=internal_headers("s3cret-from-env"))
        assert right.status_code == service.with_token


def test_production_refuses_the_default_secret(service: Service) -> None:
    with pytest.raises(ValidationError, match="CLARION_INTERNAL_TOKEN"):
        service.settings(environment="production")
    production = service.settings(environment="production", internal_token="t0ken")
    assert production.internal_token == "t0ken"
