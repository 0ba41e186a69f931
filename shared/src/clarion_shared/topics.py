"""The topic registry: every Kafka topic, its contract, producers and consumers.

This module is the truth about topics. ``python -m clarion_shared.topics create``
creates them (idempotently) with partition counts from settings.

Names are not module constants: a :class:`Topics` is built from the ``topic_prefix``
setting in each composition root, so nothing is read from the environment at import.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from .contracts import (
    authoring_changes,
    config_channels,
    config_webhooks,
    directory_lookups,
    directory_replies,
    jobs,
    replies,
    sends,
    status,
    users_changes,
    users_events,
    webhook_state,
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


_REPLY_CONFIG = {"retention.ms": str(60 * 60 * 1000)}

RETRY_TIERS_S: tuple[int, ...] = (1, 10, 60)
"""The retry topics of each channel type's jobs, by how long their jobs wait (seconds):
a job to try again later goes to the longest tier not longer than its wait, and that
tier's consumer holds it until it is due (``DeliveryJob.not_before``), so the waits of
one tier's partition are about equal and none holds the jobs topic itself."""
_COMPACT = {"cleanup.policy": "compact"}


@dataclass(frozen=True)
class Topics:
    """The topic names of one namespace: ``<prefix>clarion.sends``, ...

    ``prefix`` is the ``topic_prefix`` setting (``CLARION_TOPIC_PREFIX``), so that
    several Clarion stacks can share one Kafka cluster: staging beside production, or
    the test and benchmark stacks beside ``make run``. Each composition root builds one
    from its settings and hands it to what publishes or subscribes.
    """

    prefix: str = ""

    def _name(self, name: str) -> str:
        return f"{self.prefix}clarion.{name}"

    @property
    def sends(self) -> str:
        return self._name("sends")

    @property
    def sends_realtime(self) -> str:
        """Realtime work has lanes of its own, so it never queues behind a batch fan-out
        in a partition (or behind a batch's lookups)."""
        return self._name("sends.realtime")

    @property
    def replies(self) -> str:
        return self._name("replies")

    @property
    def directory_lookups(self) -> str:
        return self._name("directory.lookups")

    @property
    def directory_lookups_realtime(self) -> str:
        return self._name("directory.lookups.realtime")

    @property
    def directory_replies(self) -> str:
        return self._name("directory.replies")

    @property
    def users_events(self) -> str:
        return self._name("users.events")

    @property
    def users_changes(self) -> str:
        """Which users the directory changed: every dispatcher instance drops them from
        its cache of profiles."""
        return self._name("users.changes")

    @property
    def authoring_changes(self) -> str:
        """Which apps' templates or channels the gateway changed: every gateway instance
        drops that app from its cache of what sends are made of."""
        return self._name("authoring.changes")

    @property
    def status(self) -> str:
        return self._name("status")

    @property
    def config_channels(self) -> str:
        return self._name("config.channels")

    @property
    def config_webhooks(self) -> str:
        return self._name("config.webhooks")

    @property
    def webhooks_state(self) -> str:
        """Endpoint state changes the webhook-emitter decides (disabled after failures),
        which the gateway applies to the configuration it owns."""
        return self._name("webhooks.state")

    def jobs(self, channel_type: str) -> str:
        return self._name(f"jobs.{channel_type}")

    def jobs_retry(self, channel_type: str, tier_s: int) -> str:
        """Jobs of ``channel_type`` waiting about ``tier_s`` seconds to be tried again."""
        return self._name(f"jobs.{channel_type}.retry.{tier_s}s")

    def registry(self) -> dict[str, TopicSpec]:
        """Every topic of the namespace: its contract, producers and consumers."""
        return {spec.name: spec for spec in _specs(self)}

    def all_names(self) -> list[str]:
        """Every topic and dead-letter topic name of the namespace."""
        names: list[str] = []
        for spec in self.registry().values():
            names.append(spec.name)
            if spec.dlq:
                names.append(spec.dlq)
        return names


def _specs(t: Topics) -> list[TopicSpec]:  # long: the registry, one entry per topic
    return [
        TopicSpec(
            t.sends,
            "batch or campaign id and chunk (<id>:<chunk>)",
            ("api-gateway", "other services"),
            ("dispatcher",),
            sends.SendNotification,
        ),
        TopicSpec(
            t.sends_realtime,
            "notification id",
            ("api-gateway",),
            ("dispatcher",),
            sends.SendNotification,
        ),
        TopicSpec(
            t.replies,
            "request id",
            ("dispatcher",),
            ("api-gateway",),
            replies.SendResult,
            has_dlq=False,
            config=_REPLY_CONFIG,
        ),
        TopicSpec(
            t.directory_lookups,
            "request id",
            ("dispatcher",),
            ("user-directory",),
            directory_lookups.LookupUsers,
        ),
        TopicSpec(
            t.directory_lookups_realtime,
            "request id",
            ("dispatcher",),
            ("user-directory",),
            directory_lookups.LookupUsers,
        ),
        TopicSpec(
            t.directory_replies,
            "request id",
            ("user-directory",),
            ("dispatcher",),
            directory_replies.UsersResolved,
            has_dlq=False,
            config=_REPLY_CONFIG,
        ),
        TopicSpec(
            t.users_events,
            "app id:uid",
            ("other services",),
            ("user-directory",),
            users_events.UserEvent,
        ),
        TopicSpec(
            t.users_changes,
            "app id",
            ("user-directory",),
            ("dispatcher",),
            users_changes.UsersChanged,
            # Every dispatcher instance reads it from its end (a tail, no consumer
            # group), and a tail never dead-letters: an unreadable record empties the
            # reader's cache instead.
            has_dlq=False,
        ),
        TopicSpec(
            t.authoring_changes,
            "app id",
            ("api-gateway",),
            ("api-gateway",),
            authoring_changes.AuthoringChanged,
            # Read by every gateway instance from its end, like users.changes.
            has_dlq=False,
        ),
        *[
            TopicSpec(
                t.jobs(channel_type),
                "app id:uid",
                ("dispatcher",),
                ("dispatcher delivery workers",),
                jobs.DeliveryJob,
            )
            for channel_type in sends.CHANNEL_TYPES
            if channel_type != "in_app"
        ],
        *[
            TopicSpec(
                t.jobs_retry(channel_type, tier),
                "app id:uid",
                ("dispatcher delivery workers",),
                ("dispatcher delivery workers",),
                jobs.DeliveryJob,
                # What cannot be delivered is dead-lettered to the jobs topic's DLQ.
                has_dlq=False,
            )
            for channel_type in sends.CHANNEL_TYPES
            if channel_type != "in_app"
            for tier in RETRY_TIERS_S
        ],
        TopicSpec(
            t.status,
            "send id",
            ("dispatcher", "api-gateway (campaign finished)"),
            ("api-gateway", "webhook-emitter"),
            status.StatusEvent,
        ),
        TopicSpec(
            t.config_channels,
            "app id:channel id",
            ("api-gateway",),
            ("dispatcher",),
            config_channels.ChannelConfig,
            compacted=True,
            config=_COMPACT,
        ),
        TopicSpec(
            t.config_webhooks,
            "app id:webhook id",
            ("api-gateway",),
            ("webhook-emitter",),
            config_webhooks.WebhookConfig,
            compacted=True,
            config=_COMPACT,
        ),
        TopicSpec(
            t.webhooks_state,
            "app id:webhook id",
            ("webhook-emitter",),
            ("api-gateway",),
            webhook_state.WebhookDisabled,
        ),
    ]


async def ensure_topics(
    settings: InfraSettings, topics: Topics, timeout_s: float = 60.0
) -> list[str]:
    """Create every topic of the namespace ``topics`` (and its dead-letter topic) that
    is missing. Returns the names it created. Safe to run concurrently and repeatedly."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        existing = set(await admin.list_topics())
        wanted: list[NewTopic] = []
        for spec in topics.registry().values():
            partitions = spec.partitions or settings.kafka_partitions
            name = spec.name
            if name not in existing:
                wanted.append(
                    NewTopic(
                        name,
                        partitions,
                        settings.kafka_replication_factor,
                        topic_configs=dict(spec.config),
                    )
                )
            dlq = spec.dlq
            if dlq and dlq not in existing:
                wanted.append(NewTopic(dlq, 1, settings.kafka_replication_factor))
        created: list[str] = []
        for topic in wanted:
            try:
                response = await admin.create_topics([topic])
            except TopicAlreadyExistsError:
                continue
            # aiokafka reports a topic's error in the response, not as an exception:
            # a topic the listing missed (stale metadata) answers TOPIC_ALREADY_EXISTS.
            for name, code, *message in response.topic_errors:
                if code == TopicAlreadyExistsError.errno:
                    continue
                if code != 0:
                    raise RuntimeError(f"creating topic {name} failed: error {code} {message}")
                created.append(name)
        return created
    finally:
        await admin.close()


async def delete_topics(settings: InfraSettings, topics: Topics) -> int:
    """Delete the topics of the namespace ``topics`` (a throwaway stack's)."""
    if not topics.prefix:
        raise ValueError("refusing to delete the topics of the default namespace")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        doomed = sorted(set(topics.all_names()) & set(await admin.list_topics()))
        if doomed:
            await admin.delete_topics(doomed)
        return len(doomed)
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Clarion topic registry")
    parser.add_argument("command", choices=["create", "list"])
    args = parser.parse_args()
    settings = InfraSettings()
    topics = Topics(settings.topic_prefix)
    if args.command == "list":
        for spec in topics.registry().values():
            print(f"{spec.name}\tkey={spec.key}\tdlq={spec.dlq or '-'}")
        return
    created = asyncio.run(ensure_topics(settings, topics))
    print(f"topics ready ({len(created)} created)")


if __name__ == "__main__":
    main()
