"""Composition root of the webhook-emitter: settings, adapters, subscribers, lifespan,
readiness."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from pydantic import Field
from pydantic_settings import SettingsConfigDict
from pymongo import AsyncMongoClient

from clarion_shared import kafka, mongo
from clarion_shared.http import ReadinessCheck, create_app
from clarion_shared.lifecycle import Hooks, Resource, lifespan, on_stop
from clarion_shared.mongo import Document
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
    mongo: AsyncMongoClient[Document]

    @classmethod
    def connect(cls, settings: Settings) -> Adapters:
        """The real adapters (nothing started yet)."""
        client = mongo.make_client(settings.mongodb_url)
        return cls(
            endpoints=MongoEndpointRepository(client[settings.db_name]),
            broker=kafka.make_broker(settings, SERVICE),
            mongo=client,
        )

    def resources(self) -> list[Resource]:
        """What the lifespan starts, in this order, and stops in reverse."""
        return [
            on_stop(self.mongo.close),
            self.endpoints,
            Hooks(self.broker.start, self.broker.stop),
        ]

    def readiness(self) -> dict[str, ReadinessCheck]:
        """The /readyz checks of the adapters (``compose`` adds the consumer groups')."""
        return {"kafka": kafka.readiness(self.broker), "mongo": mongo.readiness(self.mongo)}


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
    )


def build(settings: Settings) -> FastAPI:
    return compose(settings, Adapters.connect(settings))
