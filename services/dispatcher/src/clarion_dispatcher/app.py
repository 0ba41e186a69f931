"""Composition root of the dispatcher: Settings, Adapters, compose(), build()."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from clarion_shared import http, kafka, mongo
from clarion_shared.http import ReadinessCheck
from clarion_shared.lifecycle import Resource, lifespan
from clarion_shared.settings import ServiceSettings
from clarion_shared.topics import Topics

from .errors import ERRORS
from .fanout import consumers
from .fanout.kafka import KafkaDirectoryClient
from .fanout.service import UserDirectory
from .feed import routes as feed_routes
from .feed.live import FeedHub, status_tail
from .feed.mongo import MongoFeed
from .feed.service import FeedRepository
from .notifications import routes as notification_routes
from .notifications.mongo import MongoNotifications
from .notifications.service import NotificationRepository
from .publisher import BrokerPublisher, Publisher

SERVICE = "dispatcher"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLARION_DISPATCHER_", extra="ignore", frozen=True)

    db_name: str = "clarion_dispatcher"
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
    feed_stream_heartbeat_s: float = Field(
        default=15.0,
        gt=0,
        description="A live feed stream sends a comment this often, so that proxies keep it.",
    )


@dataclass(frozen=True)
class Adapters:
    """Everything the dispatcher talks to."""

    database: mongo.MongoConnection
    notifications: NotificationRepository
    feed: FeedRepository
    directory: UserDirectory
    broker: KafkaBroker
    publisher: Publisher
    feed_hub: FeedHub
    # Reads the status topic from its end and feeds ``feed_hub`` (``feed.live``).
    feed_tail: Resource

    @classmethod
    def connect(cls, settings: Settings) -> Adapters:
        """The real adapters (nothing started yet)."""
        client = mongo.make_client(
            settings.mongodb_url,
            timeout_ms=settings.mongo_timeout_ms,
            max_pool_size=settings.mongo_max_pool_size,
        )
        db = client[settings.db_name]
        broker = kafka.make_broker(settings, SERVICE)
        topics = Topics(settings.topic_prefix)
        directory = KafkaDirectoryClient(
            broker,
            topics,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            timeout_s=settings.directory_timeout_s,
            fetch_max_wait_ms=settings.reply_fetch_max_wait_ms,
        )
        hub = FeedHub()
        return cls(
            database=mongo.MongoConnection(client),
            notifications=MongoNotifications(db),
            feed=MongoFeed(db),
            directory=directory,
            broker=broker,
            publisher=BrokerPublisher(broker),
            feed_hub=hub,
            feed_tail=status_tail(
                settings.kafka_bootstrap_servers,
                topics.status,
                hub,
                settings.reply_fetch_max_wait_ms,
            ),
        )

    def resources(self) -> list[Resource]:
        """What the lifespan starts, in this order, and stops in reverse."""
        return [
            self.database,
            self.notifications,
            self.feed,
            # The reply consumer before the broker: a chunk consumed as soon as the
            # broker starts may already ask the directory.
            self.directory,
            kafka.BrokerConnection(self.broker),
            self.feed_tail,
        ]

    def readiness(self) -> dict[str, ReadinessCheck]:
        """The /readyz checks of the adapters (``compose`` adds the consumer groups')."""
        return {
            "mongo": self.database.ready,
            "kafka": kafka.BrokerConnection(self.broker).ready,
            "directory_replies": self.directory.ready,
        }


def compose(settings: Settings, adapters: Adapters) -> FastAPI:
    """Use cases wired to ``adapters``; routes, subscribers, lifespan, readiness."""
    topics = Topics(settings.topic_prefix)
    groups = kafka.ConsumerGroups(adapters.broker, settings.group_id, settings.group_instance_id)
    consumers.register(
        groups,
        topics,
        directory=adapters.directory,
        notifications=adapters.notifications,
        feed=adapters.feed,
        publisher=adapters.publisher,
        max_records=settings.max_batch_records,
    )
    app = http.create_app(
        SERVICE,
        "Clarion dispatcher (internal)",
        lifespan(SERVICE, adapters.resources()),
        errors=ERRORS,
        readiness={**adapters.readiness(), "kafka_groups": groups.joined},
        internal_token=settings.internal_token,
        description="Fan-out of send commands; the in-app feed and notification states.",
    )
    app.include_router(
        feed_routes.router(
            adapters.feed,
            adapters.publisher,
            topics,
            adapters.feed_hub,
            settings.feed_stream_heartbeat_s,
        )
    )
    app.include_router(notification_routes.router(adapters.notifications))
    return app


def build(settings: Settings) -> FastAPI:
    return compose(settings, Adapters.connect(settings))
