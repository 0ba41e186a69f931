"""The dispatcher's ``delivery`` role (``CLARION_DISPATCHER_ROLE=delivery``): the
delivery workers of ``clarion.jobs.<type>``, as a process of their own.

A role of the dispatcher rather than a fifth service: the jobs, the notification
records they deliver and the status events they end in are the dispatcher's, and the
workers share its code (records' ids, event ids, the deliveries collection). A process
of its own, because providers are slow and bursty in ways the fan-out must never feel,
and because each channel type scales on its own (``CLARION_DISPATCHER_DELIVERY_TYPES``:
one process per type, as many as its jobs topic has partitions).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from clarion_shared import http, kafka, mongo
from clarion_shared.lifecycle import lifespan
from clarion_shared.topics import Topics

from ..errors import ERRORS
from ..notifications.delivered import DeliveredRecords
from ..notifications.mongo import MongoNotifications
from ..notifications.service import NotificationRepository
from ..sends.mongo import MongoSends
from ..sends.service import SendIndex, refresh_realtime
from . import consumers
from .channels import ChannelConfigs, Channels, builders, trust
from .domain import RetryPolicy
from .kafka import KafkaDeliveryPublisher
from .limits import Circuit
from .mongo import MongoDeliveries
from .service import Tuning, Worker

if TYPE_CHECKING:
    from ..app import Settings

SERVICE = "dispatcher-delivery"


@dataclass(frozen=True)
class DeliveryAdapters:
    database: mongo.MongoConnection
    deliveries: MongoDeliveries
    broker: KafkaBroker
    configs: ChannelConfigs
    channels: Channels
    # What the listing of sends shows of a realtime send follows its deliveries.
    notifications: NotificationRepository
    sends: SendIndex

    @classmethod
    def connect(cls, settings: Settings) -> DeliveryAdapters:
        client = mongo.make_client(
            settings.mongodb_url,
            timeout_ms=settings.mongo_timeout_ms,
            max_pool_size=settings.mongo_max_pool_size,
        )
        topics = Topics(settings.topic_prefix)
        configs = ChannelConfigs(
            settings.kafka_bootstrap_servers,
            topics.config_channels,
            settings.reply_fetch_max_wait_ms,
        )
        channels = Channels(
            configs,
            builders(
                allow_private=settings.allow_private, ssl_context=trust(settings.delivery_ca_file)
            ),
            default_rate=settings.delivery_rate_limit_per_second,
            circuit=lambda: Circuit(
                threshold=settings.delivery_circuit_failures,
                cooldown_s=settings.delivery_circuit_cooldown_s,
            ),
        )
        db = client[settings.db_name]
        deliveries = MongoDeliveries(db)
        sends = MongoSends(db)
        return cls(
            database=mongo.MongoConnection(client),
            deliveries=deliveries,
            notifications=DeliveredRecords(MongoNotifications(db, sends), deliveries),
            sends=sends,
            broker=kafka.make_broker(settings, SERVICE),
            configs=configs,
            channels=channels,
        )


def compose_delivery(settings: Settings, adapters: DeliveryAdapters) -> FastAPI:
    topics = Topics(settings.topic_prefix)
    worker = Worker(
        adapters.deliveries,
        adapters.channels,
        KafkaDeliveryPublisher(adapters.broker, topics),
        Tuning(
            policy=RetryPolicy(
                max_attempts=settings.delivery_max_attempts,
                base_s=settings.delivery_retry_base_s,
                cap_s=settings.delivery_retry_cap_s,
            ),
            defer_after_s=settings.delivery_defer_after_s,
        ),
        realtime_done=partial(
            refresh_realtime, notifications=adapters.notifications, sends=adapters.sends
        ),
    )
    instance = settings.group_instance_id
    groups = kafka.ConsumerGroups(
        adapters.broker,
        settings.delivery_group_id(settings.group_id),
        f"{instance}-delivery" if instance else None,
    )
    consumers.register(
        groups,
        topics,
        worker,
        settings.delivered_types(),
        max_records=settings.delivery_max_records,
        hold_s=settings.delivery_hold_s,
    )
    return http.create_app(
        SERVICE,
        "Clarion delivery workers (internal)",
        # The broker last: no job is taken before the channels' configurations are read;
        # stopped first: no job is taken while the providers' clients close.
        lifespan(
            SERVICE,
            [
                adapters.database,
                adapters.deliveries,
                adapters.configs,
                adapters.channels,
                kafka.BrokerConnection(adapters.broker),
            ],
        ),
        errors=ERRORS,
        readiness={
            "mongo": adapters.database.ready,
            "kafka": kafka.BrokerConnection(adapters.broker).ready,
            "channel_configs": adapters.configs.is_ready,
            "kafka_groups": groups.joined,
        },
        internal_token=settings.internal_token,
        description="Delivery of notifications to their providers (email, push, SMS, "
        "WhatsApp, custom HTTP).",
    )


def build_delivery(settings: Settings) -> FastAPI:
    return compose_delivery(settings, DeliveryAdapters.connect(settings))
