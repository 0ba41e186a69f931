"""pytest plugin: ``pytest_plugins = ["clarion_shared.testing.plugin"]``.

Fixtures:
- ``infra``: the real Kafka and MongoDB-wire addresses, topics created (session).
- ``infra_settings``: an ``InfraSettings`` pointing at them.
- ``mongo_client``: an ``AsyncMongoClient`` on the test database server.
- ``test_db_name``: a fresh database name for one test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from ..kafka import wait_for_kafka
from ..settings import InfraSettings
from ..topics import ensure_topics
from .helpers import random_ref
from .infra import InfraAddresses, provide_infra


@pytest.fixture(scope="session")
def infra() -> Iterator[InfraAddresses]:
    with ExitStack() as stack:
        addresses = provide_infra(stack)
        settings = InfraSettings()
        asyncio.run(_prepare(settings))
        yield addresses


async def _prepare(settings: InfraSettings) -> None:
    await wait_for_kafka(settings, timeout_s=90)
    await ensure_topics(settings)


@pytest.fixture(scope="session")
def infra_settings(infra: InfraAddresses) -> InfraSettings:
    return InfraSettings(
        kafka_bootstrap_servers=infra.kafka_bootstrap_servers,
        mongodb_url=infra.mongodb_url,
    )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def mongo_client(infra: InfraAddresses) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_url)
    yield client
    await client.close()


@pytest.fixture
def test_db_name() -> str:
    return random_ref("db").replace("-", "_")
