"""Fixtures of the user-directory tests: the in-memory repository (the fake the unit
tests use, held to the same suite as the Mongo one), a repository on the real database,
the settings of a directory under test, and the whole service running on the real
database and broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from clarion_devtools.helpers import random_ref
from clarion_directory.app import Settings, build
from clarion_directory.testing import InMemoryUserRepository
from clarion_directory.users.mongo import MongoUserRepository
from clarion_directory.users.service import UserRepository
from clarion_shared.settings import InfraSettings


@pytest.fixture
def memory_repo() -> InMemoryUserRepository:
    return InMemoryUserRepository()


@pytest_asyncio.fixture(loop_scope="session")
async def mongo_repo(
    mongo_client: AsyncMongoClient[dict[str, Any]], test_db_name: str
) -> AsyncIterator[MongoUserRepository]:
    repo = MongoUserRepository(mongo_client[test_db_name])
    await repo.start()
    yield repo
    await mongo_client.drop_database(test_db_name)


@pytest.fixture(params=["memory", pytest.param("mongo", marks=pytest.mark.integration)])
def repo(request: pytest.FixtureRequest) -> UserRepository:
    """The repository suite runs against the fake and against the real database."""
    name = "memory_repo" if request.param == "memory" else "mongo_repo"
    found: UserRepository = request.getfixturevalue(name)
    return found


def directory_settings(infra: InfraSettings) -> Settings:
    """Settings of a service under test: the tests' topics, its own database and
    consumer group.

    A consumer in the shared ``user-directory`` group would take partitions (and the
    lookups on them) from any real directory running on the same broker; a fresh group
    starts at the end of the topics instead of replaying their history.
    """
    return Settings(
        kafka_bootstrap_servers=infra.kafka_bootstrap_servers,
        mongodb_url=infra.mongodb_url,
        topic_prefix=infra.topic_prefix,
        db_name=random_ref("db_dir").replace("-", "_"),
        group_id=random_ref("user-directory-test"),
        auto_offset_reset="latest",
    )


@pytest.fixture(scope="session")
def make_settings(infra_settings: InfraSettings) -> Callable[[], Settings]:
    return lambda: directory_settings(infra_settings)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def real_app(
    make_settings: Callable[[], Settings], mongo_client: AsyncMongoClient[dict[str, Any]]
) -> AsyncIterator[FastAPI]:
    """The whole service, lifespan included (Kafka consumers, indexes, readiness), on a
    database of its own (one per test module)."""
    settings = make_settings()
    app = build(settings)
    async with app.router.lifespan_context(app):
        yield app
    await mongo_client.drop_database(settings.db_name)
