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
from clarion_shared.tail import FETCH_MAX_WAIT_MS
from clarion_shared.topics import Topics

from .analytics import consumers as analytics_consumers
from .analytics import routes as analytics_routes
from .analytics.consumers import AnalyticsSweep
from .analytics.mongo import MongoAnalytics
from .analytics.service import AnalyticsRepository
from .batches import consumers as batch_consumers
from .batches import routes as batch_routes
from .batches.kafka import TransactionalAnnouncer
from .batches.mongo import MongoBatches
from .batches.service import Announcer, BatchRepository
from .delivery.app import build_delivery
from .delivery.mongo import MongoDeliveries
from .delivery.settings import DeliverySettings
from .errors import ERRORS
from .fanout import consumers
from .fanout.kafka import KafkaDirectoryClient
from .fanout.service import UserDirectory
from .feed import routes as feed_routes
from .feed.live import FeedHub, status_tail
from .feed.mongo import MongoFeed
from .feed.service import FeedRepository
from .notifications import routes as notification_routes
from .notifications.delivered import DeliveredRecords
from .notifications.mongo import MongoNotifications
from .notifications.service import NotificationRepository
from .publisher import BrokerPublisher, Publisher
from .push import routes as push_routes
from .push.mongo import MongoPushStates
from .push.service import PushStateRepository
from .sends import routes as send_routes
from .sends.mongo import MongoSends
from .sends.service import SendIndex
from .users.cache import UserCache
from .users.directory import CachingDirectory
from .users.kafka import UserChangesTail

SERVICE = "dispatcher"


class Settings(DeliverySettings):
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
        default=FETCH_MAX_WAIT_MS,
        ge=0,
        description="fetch_max_wait_ms of this process's tails (directory replies, user "
        "changes, live feeds): how often an idle tail asks the broker again; a record is "
        "answered at once whatever it is (clarion_shared.tail).",
    )
    user_cache_size: int = Field(
        default=100_000,
        ge=0,
        description="User profiles each process keeps for realtime sends (users.cache); "
        "0 turns the cache off: every lookup asks the user-directory.",
    )
    user_cache_ttl_s: float = Field(
        default=60.0,
        gt=0,
        description="How long a cached profile is used at most: how stale it can be when "
        "the directory's announcement of a change was lost.",
    )
    feed_stream_heartbeat_s: float = Field(
        default=15.0,
        gt=0,
        description="A live feed stream sends a comment this often, so that proxies keep it.",
    )
    tracker_max_records: int = Field(
        default=500,
        ge=1,
        description="Status events the batch tracker handles together from one fetch.",
    )
    tracker_transaction_timeout_ms: int = Field(
        default=10_000,
        ge=1_000,
        description="How long the broker keeps a killed tracker's transaction open (its "
        "BatchCompleted unpublished) before aborting it; read_committed readers of that "
        "partition wait as long. A restart under the same group instance id aborts it at "
        "once.",
    )

    analytics_max_records: int = Field(
        default=500,
        ge=1,
        description="Status events analytics counts together from one fetch (one bulk "
        "write of marks, one update per rollup they touch).",
    )
    analytics_sweep_interval_s: float = Field(
        default=10.0,
        gt=0,
        description="How often analytics finishes the counting a crash left half done.",
    )
    analytics_sweep_grace_s: int = Field(
        default=30,
        ge=0,
        description="How old a half-done count must be before the sweep finishes it (a "
        "younger one may still be under way in a live process).",
    )
    analytics_keep_marks_days: int = Field(
        default=30,
        ge=8,
        description="How long analytics remembers which status events it counted: a "
        "replay or republish of an older event would count again (the status topic "
        "keeps 7 days).",
    )

    def analytics_group_id(self) -> str:
        """The prefix of the analytics counter's consumer group, apart from the tracker's."""
        return f"{self.group_id}-analytics"

    def tracker_transactional_id(self, topics: Topics) -> str:
        """Stable per process instance (its group instance id when set), unique per
        namespace (the group id names the prefixed topic)."""
        instance = self.group_instance_id or self.instance_id
        return f"{kafka.group_id_of(self.group_id, topics.status)}.{instance}"


@dataclass(frozen=True)
class Adapters:
    """Everything the dispatcher talks to."""

    database: mongo.MongoConnection
    notifications: NotificationRepository
    feed: FeedRepository
    batches: BatchRepository
    # The sends listing's entries, kept by ``notifications`` and ``batches`` as they write.
    sends: SendIndex
    # The delivery workers' outcomes (their role writes them; reads show them).
    deliveries: MongoDeliveries
    # What devices reported of push notifications (delivered, clicked, engaged).
    push_states: PushStateRepository
    # Rollups of the status events, and the marks of the events counted.
    analytics: AnalyticsRepository
    directory: UserDirectory
    broker: KafkaBroker
    publisher: Publisher
    # Publishes BatchCompleted with the tracker's offsets, in Kafka transactions.
    announcer: Announcer
    feed_hub: FeedHub
    # Reads the status topic from its end and feeds ``feed_hub`` (``feed.live``).
    feed_tail: Resource
    # Reads clarion.users.changes from its end and keeps ``directory``'s cache coherent.
    user_changes: UserChangesTail

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
        user_cache = UserCache(settings.user_cache_size, settings.user_cache_ttl_s)
        directory = KafkaDirectoryClient(
            broker,
            topics,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            timeout_s=settings.directory_timeout_s,
            fetch_max_wait_ms=settings.reply_fetch_max_wait_ms,
        )
        hub = FeedHub()
        sends = MongoSends(db)
        return cls(
            database=mongo.MongoConnection(client),
            notifications=MongoNotifications(db, sends),
            feed=MongoFeed(db),
            batches=MongoBatches(db, sends),
            sends=sends,
            deliveries=MongoDeliveries(db),
            push_states=MongoPushStates(db),
            analytics=MongoAnalytics(db),
            directory=CachingDirectory(directory, user_cache),
            broker=broker,
            publisher=BrokerPublisher(broker),
            announcer=TransactionalAnnouncer(
                settings.kafka_bootstrap_servers,
                topics.status,
                transactional_id=settings.tracker_transactional_id(topics),
                group_id=kafka.group_id_of(settings.group_id, topics.status),
                transaction_timeout_ms=settings.tracker_transaction_timeout_ms,
                request_timeout_ms=settings.kafka_request_timeout_ms,
            ),
            feed_hub=hub,
            user_changes=UserChangesTail(
                settings.kafka_bootstrap_servers,
                topics.users_changes,
                user_cache,
                settings.reply_fetch_max_wait_ms,
            ),
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
            self.batches,
            self.sends,
            self.deliveries,
            self.push_states,
            self.analytics,
            # The reply consumer before the broker: a chunk consumed as soon as the
            # broker starts may already ask the directory. The announcer too: the
            # tracker may decide a batch as soon as it consumes.
            self.directory,
            self.user_changes,
            self.announcer,
            kafka.BrokerConnection(self.broker),
            self.feed_tail,
        ]

    def readiness(self) -> dict[str, ReadinessCheck]:
        """The /readyz checks of the adapters (``compose`` adds the consumer groups')."""
        return {
            "mongo": self.database.ready,
            "kafka": kafka.BrokerConnection(self.broker).ready,
            "directory_replies": self.directory.ready,
            "user_changes": self.user_changes.ready,
            "batch_announcer": self.announcer.ready,
        }


def analytics_counter(
    settings: Settings, adapters: Adapters, topics: Topics
) -> tuple[kafka.ConsumerGroups, AnalyticsSweep]:
    """The analytics counter, subscribed in consumer groups of its own (apart from the
    tracker's on the same topic), and the sweep that finishes what a crash left."""
    groups = kafka.ConsumerGroups(
        adapters.broker,
        settings.analytics_group_id(),
        f"{settings.group_instance_id}-analytics" if settings.group_instance_id else None,
    )
    analytics_consumers.register(
        groups, topics, repo=adapters.analytics, max_records=settings.analytics_max_records
    )
    sweep = AnalyticsSweep(
        adapters.analytics,
        settings.analytics_sweep_interval_s,
        grace_s=settings.analytics_sweep_grace_s,
        keep_days=settings.analytics_keep_marks_days,
    )
    return groups, sweep


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
        batches=adapters.batches,
        publisher=adapters.publisher,
        max_records=settings.max_batch_records,
    )
    batch_consumers.register(
        groups,
        topics,
        batches=adapters.batches,
        announcer=adapters.announcer,
        max_records=settings.tracker_max_records,
    )
    analytics_groups, sweep = analytics_counter(settings, adapters, topics)

    async def joined() -> bool:
        return await groups.joined() and await analytics_groups.joined()

    app = http.create_app(
        SERVICE,
        "Clarion dispatcher (internal)",
        lifespan(SERVICE, [*adapters.resources(), sweep]),
        errors=ERRORS,
        readiness={**adapters.readiness(), "kafka_groups": joined},
        internal_token=settings.internal_token,
        description="Fan-out of send commands; the in-app feed, notification and batch "
        "states; analytics.",
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
    app.include_router(notification_routes.router(adapters.notifications, adapters.deliveries))
    app.include_router(
        push_routes.router(adapters.notifications, adapters.deliveries, adapters.push_states)
    )
    app.include_router(batch_routes.router(adapters.batches))
    app.include_router(analytics_routes.router(adapters.analytics))
    delivered = DeliveredRecords(adapters.notifications, adapters.deliveries)
    app.include_router(send_routes.router(adapters.sends, adapters.batches, delivered))
    return app


def build(settings: Settings) -> FastAPI:
    """The process ``settings.role`` says: the dispatcher, or its delivery workers."""
    if settings.role == "delivery":
        return build_delivery(settings)
    return compose(settings, Adapters.connect(settings))
