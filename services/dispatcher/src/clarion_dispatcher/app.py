"""Composition root of the dispatcher: settings, clients, broker, routes, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from clarion_shared import http, kafka, mongo
from clarion_shared.logging import configure_logging, get_logger
from clarion_shared.settings import ServiceSettings

from .adapters.directory import KafkaDirectoryClient
from .adapters.feed import MongoFeed
from .adapters.notifications import MongoNotifications
from .adapters.publisher import BrokerPublisher
from .handlers import Dependencies, feed_router, notifications_router, register_consumers

SERVICE = "dispatcher"
log = get_logger(__name__)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLARION_DISPATCHER_", extra="ignore", frozen=True)

    port: int = 8081
    group_id: str = Field(
        default="dispatcher",
        description="Prefix of the consumer groups, one per topic: <prefix>.<topic>.",
    )
    directory_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="How long a uid lookup may take before the chunk is retried.",
    )
    max_batch_records: int = Field(
        default=16,
        ge=1,
        description="Send commands fanned out together from one fetch.",
    )
    reply_fetch_max_wait_ms: int = Field(
        default=5,
        ge=0,
        description="fetch_max_wait_ms of the directory reply consumer (latency).",
    )


def http_app(deps: Dependencies, lifespan: Lifespan) -> FastAPI:
    """The HTTP side alone: envelopes, health, metrics and the internal routes."""
    app = http.create_app(
        SERVICE,
        "Clarion dispatcher (internal)",
        lifespan,
        description="Fan-out of send commands; the in-app feed and notification states.",
    )
    app.include_router(feed_router(deps))
    app.include_router(notifications_router(deps))
    return app


def build(settings: Settings) -> FastAPI:
    configure_logging(SERVICE, settings.log_level, settings.log_json)
    client = mongo.make_client(settings.mongodb_url)
    db = client[settings.db_name]
    notifications = MongoNotifications(db)
    feed = MongoFeed(db)
    broker = kafka.make_broker(settings, SERVICE)
    directory = KafkaDirectoryClient(
        broker,
        settings.kafka_bootstrap_servers,
        timeout_s=settings.directory_timeout_s,
        fetch_max_wait_ms=settings.reply_fetch_max_wait_ms,
    )
    deps = Dependencies(
        directory=directory,
        notifications=notifications,
        feed=feed,
        publisher=BrokerPublisher(broker),
    )
    groups = kafka.ConsumerGroups(broker, settings.group_id, settings.group_instance_id)
    register_consumers(groups, deps, max_records=settings.max_batch_records)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(client.close)
            await notifications.ensure_indexes()
            await feed.ensure_indexes()
            # The reply consumer first: a chunk consumed as soon as the broker starts
            # may already ask the directory.
            await directory.start()
            stack.push_async_callback(directory.stop)
            await broker.start()
            stack.push_async_callback(broker.stop)
            log.info("dispatcher.started", group_id=settings.group_id, db=settings.db_name)
            yield
            log.info("dispatcher.stopping")

    app = http_app(deps, lifespan)

    async def directory_ready() -> bool:
        return directory.ready

    app.state.readiness = {
        "mongo": mongo.readiness(client),
        "kafka": kafka.readiness(broker),
        "directory_replies": directory_ready,
        "kafka_groups": groups.joined,
    }
    return app
