"""The topic registry: every Kafka topic, its contract, producers and consumers.

This module is the truth about topics. ``python -m clarion_shared.topics create``
creates them (idempotently) with partition counts from settings.

``CLARION_TOPIC_PREFIX`` (read once, at import) puts every topic name of the process
in a namespace, so that several Clarion stacks can share one Kafka cluster: staging
beside production, or the test and benchmark stacks beside ``make run``.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from .contracts import (
    config_channels,
    config_webhooks,
    directory_lookups,
    directory_replies,
    jobs,
    replies,
    sends,
    status,
    users_events,
)
from .contracts.base import Contract
from .settings import InfraSettings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    contract: type[Contract] | object
    compacted: bool = False
    has_dlq: bool = True
    partitions: int | None = None  # None: the configured default
    config: dict[str, str] = field(default_factory=dict)

    @property
    def dlq(self) -> str | None:
        return f"{self.name}.dlq" if self.has_dlq else None


TOPIC_PREFIX = InfraSettings().topic_prefix


def with_prefix(name: str, prefix: str) -> str:
    """A topic name of this process, in the namespace ``prefix`` instead."""
    return prefix + name.removeprefix(TOPIC_PREFIX)


SENDS = f"{TOPIC_PREFIX}clarion.sends"
# Realtime work has lanes of its own, so it never queues behind a batch fan-out in a
# partition (or behind a batch's lookups of the same app, keyed alike).
SENDS_REALTIME = f"{TOPIC_PREFIX}clarion.sends.realtime"
REPLIES = f"{TOPIC_PREFIX}clarion.replies"
DIRECTORY_LOOKUPS = f"{TOPIC_PREFIX}clarion.directory.lookups"
DIRECTORY_LOOKUPS_REALTIME = f"{TOPIC_PREFIX}clarion.directory.lookups.realtime"
DIRECTORY_REPLIES = f"{TOPIC_PREFIX}clarion.directory.replies"
USERS_EVENTS = f"{TOPIC_PREFIX}clarion.users.events"
STATUS = f"{TOPIC_PREFIX}clarion.status"
CONFIG_CHANNELS = f"{TOPIC_PREFIX}clarion.config.channels"
CONFIG_WEBHOOKS = f"{TOPIC_PREFIX}clarion.config.webhooks"


def jobs_topic(channel_type: str) -> str:
    return f"{TOPIC_PREFIX}clarion.jobs.{channel_type}"


_REPLY_CONFIG = {"retention.ms": str(60 * 60 * 1000)}
_COMPACT = {"cleanup.policy": "compact"}

REGISTRY: dict[str, TopicSpec] = {
    spec.name: spec
    for spec in [
        TopicSpec(
            SENDS,
            "batch or campaign id",
            ("api-gateway", "other services"),
            ("dispatcher",),
            sends.SendNotification,
        ),
        TopicSpec(
            SENDS_REALTIME,
            "notification id",
            ("api-gateway",),
            ("dispatcher",),
            sends.SendNotification,
        ),
        TopicSpec(
            REPLIES,
            "request id",
            ("dispatcher",),
            ("api-gateway",),
            replies.SendResult,
            has_dlq=False,
            config=_REPLY_CONFIG,
        ),
        TopicSpec(
            DIRECTORY_LOOKUPS,
            "app id",
            ("dispatcher",),
            ("user-directory",),
            directory_lookups.LookupUsers,
        ),
        TopicSpec(
            DIRECTORY_LOOKUPS_REALTIME,
            "app id",
            ("dispatcher",),
            ("user-directory",),
            directory_lookups.LookupUsers,
        ),
        TopicSpec(
            DIRECTORY_REPLIES,
            "request id",
            ("user-directory",),
            ("dispatcher",),
            directory_replies.UsersResolved,
            has_dlq=False,
            config=_REPLY_CONFIG,
        ),
        TopicSpec(
            USERS_EVENTS,
            "app id:uid",
            ("other services",),
            ("user-directory",),
            users_events.UserEvent,
        ),
        *[
            TopicSpec(
                jobs_topic(channel_type),
                "app id:uid",
                ("dispatcher",),
                ("dispatcher delivery workers",),
                jobs.DeliveryJob,
            )
            for channel_type in sends.CHANNEL_TYPES
            if channel_type != "in_app"
        ],
        TopicSpec(
            STATUS,
            "send id",
            ("dispatcher",),
            ("api-gateway", "webhook-emitter"),
            status.StatusEvent,
        ),
        TopicSpec(
            CONFIG_CHANNELS,
            "app id:channel id",
            ("api-gateway",),
            ("dispatcher",),
            config_channels.ChannelConfig,
            compacted=True,
            config=_COMPACT,
        ),
        TopicSpec(
            CONFIG_WEBHOOKS,
            "app id:webhook id",
            ("api-gateway",),
            ("webhook-emitter",),
            config_webhooks.WebhookConfig,
            compacted=True,
            config=_COMPACT,
        ),
    ]
}


def all_topic_names(prefix: str = TOPIC_PREFIX) -> list[str]:
    names: list[str] = []
    for spec in REGISTRY.values():
        names.append(with_prefix(spec.name, prefix))
        if spec.dlq:
            names.append(with_prefix(spec.dlq, prefix))
    return names


async def ensure_topics(
    settings: InfraSettings, timeout_s: float = 60.0, prefix: str = TOPIC_PREFIX
) -> list[str]:
    """Create every registered topic (and its dead-letter topic) that is missing.

    ``prefix`` is the namespace (this process's by default). Returns the names it
    created. Safe to run concurrently and repeatedly.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        existing = set(await admin.list_topics())
        wanted: list[NewTopic] = []
        for spec in REGISTRY.values():
            partitions = spec.partitions or settings.kafka_partitions
            name = with_prefix(spec.name, prefix)
            if name not in existing:
                wanted.append(
                    NewTopic(
                        name,
                        partitions,
                        settings.kafka_replication_factor,
                        topic_configs=dict(spec.config),
                    )
                )
            dlq = with_prefix(spec.dlq, prefix) if spec.dlq else None
            if dlq and dlq not in existing:
                wanted.append(NewTopic(dlq, 1, settings.kafka_replication_factor))
        created: list[str] = []
        for topic in wanted:
            try:
                await admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        await admin.close()


async def delete_topics(settings: InfraSettings, prefix: str) -> int:
    """Delete the registered topics of the namespace ``prefix`` (a throwaway stack's)."""
    if not prefix:
        raise ValueError("refusing to delete the topics of the default namespace")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        doomed = sorted(set(all_topic_names(prefix)) & set(await admin.list_topics()))
        if doomed:
            await admin.delete_topics(doomed)
        return len(doomed)
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Clarion topic registry")
    parser.add_argument("command", choices=["create", "list"])
    args = parser.parse_args()
    if args.command == "list":
        for spec in REGISTRY.values():
            print(f"{spec.name}\tkey={spec.key}\tdlq={spec.dlq or '-'}")
        return
    created = asyncio.run(ensure_topics(InfraSettings()))
    print(f"topics ready ({len(created)} created)")


if __name__ == "__main__":
    main()
