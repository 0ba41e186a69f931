"""Composition root of the webhook-emitter: settings, adapters, subscribers, lifespan,
readiness."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from clarion_shared import kafka, mongo
from clarion_shared.http import ReadinessCheck, create_app
from clarion_shared.lifecycle import Resource, lifespan
from clarion_shared.settings import ServiceSettings
from clarion_shared.topics import Topics

from .endpoints import consumers
from .endpoints.mongo import MongoEndpointRepository
from .endpoints.service import EndpointRepository
from .errors import ERRORS

SERVICE = "webhook-emitter"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLARION_WEBHOOKS_", extra="ignore", frozen=True)

    db_name: str = "clarion_webhooks"
    port: int = 8082
    group_id: str = Field(
        default="webhook-emitter",
        description="Prefix of the consumer groups, one per topic: <prefix>.<topic>.",
    )


@dataclass(frozen=True)
class Adapters:
    """Everything the webhook-emitter talks to."""

    endpoints: EndpointRepository
    broker: KafkaBroker
    database: mongo.MongoConnection

    @classmethod
    def connect(cls, settings: Settings) -> Adapters:
        """The real adapters (nothing started yet)."""
        client = mongo.make_client(
            settings.mongodb_url,
            timeout_ms=settings.mongo_timeout_ms,
            max_pool_size=settings.mongo_max_pool_size,
        )
        return cls(
            endpoints=MongoEndpointRepository(client[settings.db_name]),
            broker=kafka.make_broker(settings, SERVICE),
            database=mongo.MongoConnection(client),
        )

    def resources(self) -> list[Resource]:
        """What the lifespan starts, in this order, and stops in reverse."""
        return [
            self.database,
            self.endpoints,
            kafka.BrokerConnection(self.broker),
        ]

    def readiness(self) -> dict[str, ReadinessCheck]:
        """The /readyz checks of the adapters (``compose`` adds the consumer groups')."""
        return {"kafka": kafka.BrokerConnection(self.broker).ready, "mongo": self.database.ready}


def compose(settings: Settings, adapters: Adapters) -> FastAPI:
    """Use cases wired to ``adapters``; subscribers, lifespan, readiness."""
    topics = Topics(settings.topic_prefix)
    groups = kafka.ConsumerGroups(adapters.broker, settings.group_id, settings.group_instance_id)
    consumers.register(groups, topics, adapters.endpoints)
    return create_app(
        SERVICE,
        "Clarion webhook-emitter",
        lifespan(SERVICE, adapters.resources()),
        errors=ERRORS,
        readiness={**adapters.readiness(), "kafka_groups": groups.joined},
        internal_token=settings.internal_token,
    )


def build(settings: Settings) -> FastAPI:
    return compose(settings, Adapters.connect(settings))
