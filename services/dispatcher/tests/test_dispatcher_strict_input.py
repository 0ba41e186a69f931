"""The dispatcher's internal HTTP API refuses ids and numbers the database cannot take
(issue 6, finding 3): ``page=9223372036854775807`` on the feed and ``%00`` in a path id
used to answer 500 on the real database; each is 400 ``ERR_VALIDATION`` naming the
parameter, on the fakes (unit) and on the real database (integration)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from clarion_devtools.helpers import random_ref
from clarion_dispatcher.app import Adapters, Settings, compose
from clarion_dispatcher.testing import InMemoryFeed, InMemoryNotifications, RecordingPublisher
from clarion_shared.http import internal_headers
from clarion_shared.settings import InfraSettings


@pytest.fixture
def memory_dispatcher() -> FastAPI:
    settings = Settings(topic_prefix="unit.")
    adapters = replace(
        Adapters.connect(settings),
        feed=InMemoryFeed(),
        notifications=InMemoryNotifications(),
        publisher=RecordingPublisher(),
    )
    return compose(settings, adapters)


@pytest_asyncio.fixture(loop_scope="session")
async def real_dispatcher(
    infra_settings: InfraSettings, mongo_client: AsyncMongoClient[dict[str, Any]]
) -> AsyncIterator[FastAPI]:
    """The real repositories on the real database; nothing else is started (the HTTP
    routes read and write the database only)."""
    settings = Settings(
        kafka_bootstrap_servers=infra_settings.kafka_bootstrap_servers,
        mongodb_url=infra_settings.mongodb_url,
        topic_prefix=infra_settings.topic_prefix,
        db_name=random_ref("db_disp_strict").replace("-", "_"),
    )
    adapters = Adapters.connect(settings)
    try:
        yield compose(settings, replace(adapters, publisher=RecordingPublisher()))
    finally:
        await adapters.database.stop()
        await mongo_client.drop_database(settings.db_name)


@pytest.fixture(params=["memory", pytest.param("real", marks=pytest.mark.integration)])
def dispatcher(request: pytest.FixtureRequest) -> FastAPI:
    app: FastAPI = request.getfixturevalue(f"{request.param}_dispatcher")
    return app


@pytest_asyncio.fixture(loop_scope="session")
async def client(dispatcher: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=dispatcher)
    headers = internal_headers(Settings().internal_token)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://dispatcher", headers=headers
    ) as http:
        yield http


APP = "/internal/apps/app1"
CASES = [
    ("GET", f"{APP}/feed/alice?page=9223372036854775807", "page"),
    ("GET", f"{APP}/feed/alice?page=1000001", "page"),
    ("GET", f"{APP}/feed/alice/fi%00", "item_id"),
    ("POST", f"{APP}/feed/alice/fi%00/read", "item_id"),
    ("POST", f"{APP}/feed/alice/fi%00/delivered", "item_id"),
    ("DELETE", f"{APP}/feed/alice/fi%00", "item_id"),
    ("GET", f"{APP}/feed/al%00ice", "uid"),
    ("GET", f"{APP}/notifications/ntf%00", "notification_id"),
    ("GET", "/internal/apps/app%001/notifications/ntf", "app_id"),
    ("GET", f"{APP}/feed/alice?readState=un%00read", "readState"),
]


@pytest.mark.parametrize(("method", "path", "field"), CASES)
async def test_bad_ids_and_numbers_are_400_naming_the_parameter(
    client: httpx.AsyncClient, method: str, path: str, field: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "ERR_VALIDATION"
    assert field in [d["field"] for d in error["details"]], error


async def test_the_last_page_allowed_is_answered(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{APP}/feed/alice", params={"page": 1_000_000})
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []
