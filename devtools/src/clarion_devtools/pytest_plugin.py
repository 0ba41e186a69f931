"""pytest plugin: ``pytest_plugins = ["clarion_devtools.pytest_plugin"]``.

Fixtures:
- ``infra``: the real Kafka and MongoDB-wire addresses, the tests' topics created
  (session).
- ``infra_settings``: an ``InfraSettings`` pointing at them, in the tests' topic
  namespace (``TEST_TOPIC_PREFIX``): a ``make run`` on the same broker neither sees what
  the tests send nor feeds them its own records.
- ``topics``: the tests' topic names.
- ``mongo_client``: an ``AsyncMongoClient`` on the test database server.
- ``test_db_name``: a fresh database name for one test.
- ``mailpit``: a real SMTP server (``smtpserver.Mailpit``: plain SMTP, AUTH offered and
  any login taken) and its REST API, started once for the session: tests share it, so
  each one looks for its own recipients. ``mailpit_factory(**options)`` starts more
  (TLS, required credentials), all stopped at the session's end. No binary: the test
  fails and says to run ``make smtp-install``.

Hooks: the garbage collector leaves the objects of the imports and the collection out of
its full passes (``gc.freeze``), and each test's composed apps are released after it
(``release_composed_apps``): most unit tests compose a whole service app, and a full
pass over every app kept so far took seconds (see ``release_composed_apps``).
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from clarion_shared.mongo import make_client
from clarion_shared.settings import InfraSettings
from clarion_shared.topics import Topics, ensure_topics

from .helpers import random_ref, release_composed_apps, wait_for_kafka
from .infra import InfraAddresses, provide_infra
from .smtpserver import Mailpit, SMTPServerUnavailable

# CLARION_TEST_TOPIC_PREFIX moves a test run to a namespace of its own (two runs at once
# on one broker would otherwise answer each other's realtime sends).
TEST_TOPIC_PREFIX = os.environ.get("CLARION_TEST_TOPIC_PREFIX", "test.")
TEST_TOPICS = Topics(TEST_TOPIC_PREFIX)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    gc.collect()
    gc.freeze()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    release_composed_apps()


@pytest.fixture(scope="session")
def infra() -> Iterator[InfraAddresses]:
    with ExitStack() as stack:
        addresses = provide_infra(stack)
        settings = InfraSettings(
            kafka_bootstrap_servers=addresses.kafka_bootstrap_servers,
            mongodb_url=addresses.mongodb_url,
        )
        asyncio.run(_prepare(settings))
        yield addresses


async def _prepare(settings: InfraSettings) -> None:
    await wait_for_kafka(settings, timeout_s=90)
    await ensure_topics(settings, TEST_TOPICS)


@pytest.fixture(scope="session")
def topics() -> Topics:
    return TEST_TOPICS


@pytest.fixture(scope="session")
def infra_settings(infra: InfraAddresses) -> InfraSettings:
    return InfraSettings(
        kafka_bootstrap_servers=infra.kafka_bootstrap_servers,
        mongodb_url=infra.mongodb_url,
        topic_prefix=TEST_TOPIC_PREFIX,
    )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def mongo_client(infra: InfraAddresses) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    # The services' own client (a deadline on every operation, as in production), so
    # that what the server refuses with a deadline is refused in the tests too.
    client: AsyncMongoClient[dict[str, Any]] = make_client(infra.mongodb_url)
    yield client
    await client.close()


@pytest.fixture
def test_db_name() -> str:
    return random_ref("db").replace("-", "_")


@pytest.fixture(scope="session")
def mailpit_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Mailpit]]:
    with ExitStack() as stack:

        def start(**options: Any) -> Mailpit:
            server = Mailpit(tmp_path_factory.mktemp("mailpit"), **options)
            try:
                stack.enter_context(server)
            except SMTPServerUnavailable as exc:
                reason = str(exc)
            else:
                return server
            pytest.fail(reason, pytrace=False)  # outside ``except``: no chained traceback

        yield start


@pytest.fixture(scope="session")
def mailpit(mailpit_factory: Callable[..., Mailpit]) -> Mailpit:
    return mailpit_factory(accept_any_auth=True)
