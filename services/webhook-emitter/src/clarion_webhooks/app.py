"""Composition root of the webhook-emitter: settings, adapters, subscribers, lifespan,
readiness."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import SettingsConfigDict

from clarion_shared import kafka, mongo
from clarion_shared.contracts.config_webhooks import WebhookConfig
from clarion_shared.contracts.webhook_state import DisableReason
from clarion_shared.http import ReadinessCheck, create_app
from clarion_shared.lifecycle import Resource, lifespan
from clarion_shared.settings import ServiceSettings
from clarion_shared.topics import Topics

from .deliveries import consumers as delivery_consumers
from .deliveries import routes as delivery_routes
from .deliveries.domain import DEFAULT_RETRY_SCHEDULE, parse_retry_schedule
from .deliveries.engine import Lanes, LaneSettings
from .deliveries.kafka import KafkaStatePublisher
from .deliveries.mongo import MongoDeliveries, MongoInstances
from .deliveries.recovery import InstanceRegistry, Recovery
from .deliveries.sender import Sender
from .deliveries.service import DeliveryRepository, SenderPort, disable_endpoint
from .endpoints import consumers
from .endpoints.mongo import MongoEndpointRepository
from .endpoints.service import EndpointCache, EndpointHealth, EndpointRepository
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
    retry_schedule: str = Field(
        default=DEFAULT_RETRY_SCHEDULE,
        validation_alias=AliasChoices(
            "CLARION_WEBHOOK_RETRY_SCHEDULE", "CLARION_WEBHOOKS_RETRY_SCHEDULE", "retry_schedule"
        ),
        description="Seconds before each retry, comma-separated (API.md's name).",
    )
    allow_private: bool = Field(
        default=False,
        description="CLARION_WEBHOOKS_ALLOW_PRIVATE: deliver to loopback and private "
        "addresses (local runs and tests); otherwise refused at delivery time.",
    )
    connect_timeout_s: float = Field(default=5.0, gt=0)
    timeout_s: float = Field(default=15.0, gt=0, description="A whole attempt, answer read.")
    disable_after_s: int = Field(
        default=5 * 24 * 3600,
        ge=1,
        description="An endpoint failing for this long without a success is disabled.",
    )
    concurrency: int = Field(default=256, ge=1, description="Attempts in flight, in all.")
    per_endpoint: int = Field(default=32, ge=1, description="Attempts in flight per endpoint.")
    heartbeat_s: float = Field(default=5.0, gt=0)
    dead_after_s: float = Field(
        default=30.0, gt=0, description="A process silent this long is adopted by another."
    )
    endpoint_cache_s: float = Field(
        default=1.0, ge=0, description="How long a process keeps an app's endpoints."
    )

    @field_validator("retry_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        parse_retry_schedule(value)
        return value


@dataclass(frozen=True)
class Adapters:
    """Everything the webhook-emitter talks to."""

    endpoints: EndpointRepository
    deliveries: DeliveryRepository
    instances: InstanceRegistry
    sender: SenderPort
    sender_resource: Resource
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
        db = client[settings.db_name]
        sender = Sender(
            connect_timeout_s=settings.connect_timeout_s,
            timeout_s=settings.timeout_s,
            allow_private=settings.allow_private,
            max_connections=settings.concurrency,
            # No cap per host: the lanes cap each endpoint, and two endpoints on one host
            # (a shared webhook gateway) must not wait on each other's connections.
            max_per_host=0,
        )
        return cls(
            endpoints=MongoEndpointRepository(db),
            deliveries=MongoDeliveries(db),
            instances=MongoInstances(db),
            sender=sender,
            sender_resource=sender,
            broker=kafka.make_broker(settings, SERVICE),
            database=mongo.MongoConnection(client),
        )

    def readiness(self) -> dict[str, ReadinessCheck]:
        """The /readyz checks of the adapters (``compose`` adds the consumer groups')."""
        return {"kafka": kafka.BrokerConnection(self.broker).ready, "mongo": self.database.ready}


def _lanes(settings: Settings, adapters: Adapters, cache: EndpointCache) -> Lanes:
    return Lanes(
        adapters.deliveries,
        cache,
        EndpointHealth(adapters.endpoints),
        adapters.sender,
        LaneSettings(
            schedule=parse_retry_schedule(settings.retry_schedule),
            disable_after_s=settings.disable_after_s,
            concurrency=settings.concurrency,
            per_endpoint=settings.per_endpoint,
        ),
        # Unique per run, so that a restarted process adopts the work of the one it
        # replaces (an instance id alone repeats: a container's pid is 1 every time).
        owner=f"{settings.instance_id}-{secrets.token_hex(4)}",
    )


def compose(settings: Settings, adapters: Adapters) -> FastAPI:
    """Use cases wired to ``adapters``; subscribers, lifespan, readiness."""
    topics = Topics(settings.topic_prefix)
    groups = kafka.ConsumerGroups(adapters.broker, settings.group_id, settings.group_instance_id)
    cache = EndpointCache(adapters.endpoints, ttl_s=settings.endpoint_cache_s)
    lanes = _lanes(settings, adapters, cache)
    states = KafkaStatePublisher(adapters.broker, topics)

    async def disable(config: WebhookConfig, reason: DisableReason, detail: str) -> None:
        await disable_endpoint(
            adapters.endpoints, cache, states, lanes, config, reason, detail, int(time.time())
        )

    lanes.disable = disable
    recovery = Recovery(
        adapters.instances,
        adapters.deliveries,
        lanes,
        heartbeat_s=settings.heartbeat_s,
        dead_after_s=settings.dead_after_s,
    )
    consumers.register(groups, topics, adapters.endpoints, cache)
    delivery_consumers.register(groups, topics, cache, lanes)
    app = create_app(
        SERVICE,
        "Clarion webhook-emitter",
        # Stopped in reverse: the broker first (nothing more comes in), then the lanes
        # (records flushed), then the heartbeat ends (another process adopts the rest).
        lifespan(
            SERVICE,
            [
                adapters.database,
                adapters.endpoints,
                adapters.deliveries,
                adapters.instances,
                adapters.sender_resource,
                recovery,
                lanes,
                kafka.BrokerConnection(adapters.broker),
            ],
        ),
        errors=ERRORS,
        readiness={**adapters.readiness(), "kafka_groups": groups.joined},
        internal_token=settings.internal_token,
    )
    app.include_router(delivery_routes.router(adapters.deliveries, lanes, adapters.endpoints))
    return app


def build(settings: Settings) -> FastAPI:
    return compose(settings, Adapters.connect(settings))
