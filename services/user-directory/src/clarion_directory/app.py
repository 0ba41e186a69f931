"""Composition root of the user-directory: settings, clients, broker, routes, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from clarion_shared import kafka
from clarion_shared.http import create_app
from clarion_shared.kafka import make_broker
from clarion_shared.logging import configure_logging, get_logger
from clarion_shared.mongo import make_client
from clarion_shared.mongo import readiness as mongo_readiness
from clarion_shared.settings import ServiceSettings

from . import handlers
from .adapters.users import LookupStrategy, MongoUserRepository

SERVICE = "user-directory"

log = get_logger(__name__)


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLARION_DIRECTORY_", extra="ignore", frozen=True)

    port: int = 8083
    group_id: str = Field(
        default="user-directory",
        description="Prefix of the consumer groups, one per topic: <prefix>.<topic>.",
    )
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        default="earliest",
        description="Where a consumer group without committed offsets starts reading.",
    )
    lookup_strategy: LookupStrategy = Field(
        default="auto",
        description="Bulk uid lookups: one $in query, concurrent _id reads, or auto: "
        "_id reads for small lookups, $in for large ones (see the adapter).",
    )
    lookup_concurrency: int = Field(
        default=32, ge=1, le=256, description="Concurrent _id reads per lookup with 'each'."
    )


def build(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(SERVICE, settings.log_level, settings.log_json)
    mongo = make_client(settings.mongodb_url)
    users = MongoUserRepository(
        mongo[settings.db_name], settings.lookup_strategy, settings.lookup_concurrency
    )
    broker = make_broker(settings, SERVICE)
    groups = kafka.ConsumerGroups(broker, settings.group_id, settings.group_instance_id)
    handlers.register_subscribers(groups, users, settings.auto_offset_reset)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await users.prepare()
        await broker.start()

        app.state.readiness.update(
            kafka=kafka.readiness(broker), kafka_groups=groups.joined, mongo=mongo_readiness(mongo)
        )
        log.info("directory.started", port=settings.port, db=settings.db_name)
        try:
            yield
        finally:
            await broker.stop()
            await mongo.close()
            log.info("directory.stopped")

    app = create_app(
        SERVICE,
        "Clarion user directory",
        lifespan,
        description="Users and presence; the gateway forwards /v3/users here.",
    )
    app.include_router(handlers.users_router(users))
    app.state.users = users
    app.state.broker = broker
    return app
