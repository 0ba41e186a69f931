"""Composition root of the user-directory: settings, adapters, routes, subscribers,
lifespan, readiness."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from clarion_shared import kafka, mongo
from clarion_shared.http import ReadinessCheck, create_app
from clarion_shared.lifecycle import Resource, lifespan
from clarion_shared.settings import ServiceSettings
from clarion_shared.topics import Topics

from .errors import ERRORS
from .users import consumers, routes
from .users.announcements import UserChanges, UserEvents
from .users.domain import MetadataLimits
from .users.kafka import KafkaUserChanges, KafkaUserEvents
from .users.mongo import LookupStrategy, MongoUserRepository
from .users.service import UserRepository

SERVICE = "user-directory"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLARION_DIRECTORY_", extra="ignore", frozen=True)

    db_name: str = "clarion_directory"
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
        "_id reads for small lookups, $in for large ones (see the repository).",
    )
    lookup_concurrency: int = Field(
        default=32, ge=1, le=256, description="Concurrent _id reads per lookup with 'each'."
    )
    metadata_max_bytes: int = Field(
        default=32 * 1024, ge=1, description="A user's metadata as compact JSON, in bytes."
    )
    metadata_max_keys: int = Field(
        default=512, ge=1, description="Keys of a user's metadata, in objects at any depth."
    )

    def metadata_limits(self) -> MetadataLimits:
        return MetadataLimits(max_bytes=self.metadata_max_bytes, max_keys=self.metadata_max_keys)


@dataclass(frozen=True)
class Adapters:
    """Everything the directory talks to."""

    users: UserRepository
    events: UserEvents
    # Which users each write changed, for the dispatchers' caches of profiles.
    changes: UserChanges
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
        users = MongoUserRepository(
            client[settings.db_name], settings.lookup_strategy, settings.lookup_concurrency
        )
        broker = kafka.make_broker(settings, SERVICE)
        topics = Topics(settings.topic_prefix)
        return cls(
            users=users,
            events=KafkaUserEvents(broker, topics),
            changes=KafkaUserChanges(broker, topics),
            broker=broker,
            database=mongo.MongoConnection(client),
        )

    def resources(self) -> list[Resource]:
        """What the lifespan starts, in this order, and stops in reverse."""
        return [self.database, self.users, kafka.BrokerConnection(self.broker)]

    def readiness(self) -> dict[str, ReadinessCheck]:
        """The /readyz checks of the adapters (``compose`` adds the consumer groups')."""
        return {"kafka": kafka.BrokerConnection(self.broker).ready, "mongo": self.database.ready}


def compose(settings: Settings, adapters: Adapters) -> FastAPI:
    """Use cases wired to ``adapters``; routes, subscribers, lifespan, readiness."""
    topics = Topics(settings.topic_prefix)
    groups = kafka.ConsumerGroups(adapters.broker, settings.group_id, settings.group_instance_id)
    limits = settings.metadata_limits()
    consumers.register(
        groups, topics, adapters.users, adapters.changes, settings.auto_offset_reset, limits
    )
    app = create_app(
        SERVICE,
        "Clarion user directory",
        lifespan(SERVICE, adapters.resources()),
        errors=ERRORS,
        readiness={**adapters.readiness(), "kafka_groups": groups.joined},
        internal_token=settings.internal_token,
        description="Users and presence; the gateway forwards /v3/users here.",
    )
    app.include_router(routes.router(adapters.users, adapters.events, adapters.changes, limits))
    return app


def build(settings: Settings) -> FastAPI:
    return compose(settings, Adapters.connect(settings))
