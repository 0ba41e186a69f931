"""Composition root of the webhook-emitter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from clarion_shared import kafka
from clarion_shared.http import create_app
from clarion_shared.kafka import make_broker
from clarion_shared.logging import configure_logging
from clarion_shared.mongo import make_client
from clarion_shared.mongo import readiness as mongo_readiness
from clarion_shared.settings import ServiceSettings

from . import handlers
from .adapters.endpoints import EndpointRepository

SERVICE = "webhook-emitter"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLARION_WEBHOOKS_", extra="ignore", frozen=True)

    port: int = 8082
    group_id: str = Field(
        default="webhook-emitter",
        description="Prefix of the consumer groups, one per topic: <prefix>.<topic>.",
    )


def build(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(SERVICE, settings.log_level, settings.log_json)
    broker = make_broker(settings, SERVICE)
    mongo = make_client(settings.mongodb_url)
    endpoints = EndpointRepository(mongo[settings.db_name])
    groups = kafka.ConsumerGroups(broker, settings.group_id, settings.group_instance_id)
    handlers.register(groups, endpoints)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await endpoints.ensure_indexes()
        await broker.start()

        app.state.readiness.update(
            kafka=kafka.readiness(broker), kafka_groups=groups.joined, mongo=mongo_readiness(mongo)
        )
        try:
            yield
        finally:
            await broker.stop()
            await mongo.close()

    return create_app(SERVICE, "Clarion webhook-emitter", lifespan)
