"""In-memory stand-ins for the dispatcher's ports (same interfaces as the adapters), and
builders of send commands.

Used by the unit tests, and run through the same repository suite as the Mongo
adapters so they cannot drift apart. Each fake is a ``Resource`` whose start and stop
do nothing, so a test can put it in ``app.Adapters``. Each may append to a shared
``journal`` so a test can check the order of effects. The batches' fakes live in
``testing.batches``, the feed's in ``testing.feed``, analytics' in ``testing.analytics``;
all are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import JsonValue

from clarion_shared.contracts.base import Contract, JsonObject
from clarion_shared.contracts.directory_lookups import MAX_LOOKUP_UIDS
from clarion_shared.contracts.directory_replies import UserProfile
from clarion_shared.contracts.sends import (
    ChannelType,
    ReplyTo,
    SendMode,
    SendNotification,
    TemplateChannel,
    TemplateSnapshot,
    VariableSpec,
)

from ..fanout.service import DirectoryTimedOut
from ..notifications.domain import RecordsRefused
from ..notifications.models import NotificationRecord
from ..sends.domain import realtime_entries, realtime_entry
from .analytics import InMemoryAnalytics as InMemoryAnalytics
from .batches import InMemoryBatches as InMemoryBatches
from .batches import RecordingAnnouncer as RecordingAnnouncer
from .feed import InMemoryFeed as InMemoryFeed
from .sends import InMemorySends as InMemorySends


class _NoLifecycle:
    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class InMemoryNotifications(_NoLifecycle):
    """``refuses`` names the receivers whose records the "database" refuses (as MongoDB
    refuses a document it cannot store): the others are stored, then ``RecordsRefused``.
    Realtime sends are listed in ``sends`` (its own, unless one is shared)."""

    def __init__(
        self, journal: list[str] | None = None, sends: InMemorySends | None = None
    ) -> None:
        self.records: dict[str, NotificationRecord] = {}
        self.write_calls = 0
        self.refuses: set[str] = set()
        self._journal = journal
        self.sends = sends or InMemorySends()

    async def add_many(self, records: Sequence[NotificationRecord]) -> None:
        self.write_calls += 1
        if self._journal is not None:
            self._journal.append(f"notifications:{len(records)}")
        refused = [record.id for record in records if record.uid in self.refuses]
        for record in records:
            if record.uid not in self.refuses:
                self.records.setdefault(record.id, record)
        await self.sends.add_absent(realtime_entries(records))
        if refused:
            raise RecordsRefused(refused, "invalid key")

    async def put_many(self, records: Sequence[NotificationRecord]) -> None:
        for record in records:
            self.records[record.id] = record
        for app_id, send_id in {(r.app_id, r.send_id) for r in records if r.mode == "realtime"}:
            mine = await self.for_send(app_id, send_id)
            await self.sends.put([realtime_entry(app_id, send_id, mine)])

    async def for_send(self, app_id: str, send_id: str) -> list[NotificationRecord]:
        return [r for r in self.records.values() if r.send_id == send_id and r.app_id == app_id]

    async def for_chunk(self, app_id: str, send_id: str, chunk: int) -> list[NotificationRecord]:
        return [r for r in await self.for_send(app_id, send_id) if r.chunk == chunk]

    async def for_receiver(self, app_id: str, send_id: str, uid: str) -> list[NotificationRecord]:
        return [r for r in await self.for_send(app_id, send_id) if r.uid == uid]

    async def for_user(
        self, app_id: str, uid: str, channel_type: str, limit: int
    ) -> list[NotificationRecord]:
        mine = [
            r
            for r in self.records.values()
            if r.app_id == app_id and r.uid == uid and r.channel_type == channel_type
        ]
        mine.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return mine[:limit]

    async def get(self, app_id: str, notification_id: str) -> NotificationRecord | None:
        record = self.records.get(notification_id)
        return record if record is not None and record.app_id == app_id else None


@dataclass
class FakeDirectory(_NoLifecycle):
    """Knows ``users[app_id]``; records every lookup chunk it is asked."""

    users: dict[str, dict[str, UserProfile]] = field(default_factory=dict)
    lookups: list[list[str]] = field(default_factory=list)
    realtime_lookups: list[list[str]] = field(default_factory=list)
    timeout: bool = False
    journal: list[str] | None = None

    def add(self, app_id: str, *profiles: UserProfile) -> None:
        known = self.users.setdefault(app_id, {})
        for profile in profiles:
            known[profile.uid] = profile

    async def resolve(
        self, app_id: str, uids: Sequence[str], *, realtime: bool = False
    ) -> Mapping[str, UserProfile]:
        if self.timeout:
            raise DirectoryTimedOut("the directory did not answer")
        for start in range(0, len(uids), MAX_LOOKUP_UIDS):
            chunk = list(uids[start : start + MAX_LOOKUP_UIDS])
            self.lookups.append(chunk)
            if realtime:
                self.realtime_lookups.append(chunk)
        if self.journal is not None:
            self.journal.append(f"lookup:{len(uids)}")
        known = self.users.get(app_id, {})
        return {uid: known[uid] for uid in uids if uid in known}

    async def ready(self) -> bool:
        return True


@dataclass(frozen=True)
class Published:
    topic: str
    key: str | None
    message: Contract


@dataclass
class RecordingPublisher:
    published: list[Published] = field(default_factory=list)
    calls: int = 0
    journal: list[str] | None = None

    async def publish(self, topic: str, message: Contract, key: str | None) -> None:
        self.calls += 1
        self.published.append(Published(topic, key, message))
        if self.journal is not None:
            self.journal.append(f"publish:{topic}")

    async def publish_many(
        self, topic: str, messages: Sequence[tuple[str | None, Contract]]
    ) -> None:
        self.calls += 1
        self.published.extend(Published(topic, key, message) for key, message in messages)
        if self.journal is not None:
            self.journal.append(f"publish_many:{topic}:{len(messages)}")

    def on(self, topic: str) -> list[Published]:
        return [p for p in self.published if p.topic == topic]


# ------------------------------------------------------------------- builders

IN_APP_CONTENT: JsonObject = {"title": "Hi {{name}}", "body": "Your order {{order}} shipped."}
EMAIL_CONTENT: JsonObject = {
    "subject": "Order {{order}}",
    "text": "Hi {{name}}",
    "html": "<p>Hi {{name}}</p>",
}
CHANNEL_IDS: dict[ChannelType, str] = {
    "in_app": "in-app",
    "push": "push",
    "email": "email",
    "sms": "sms",
    "custom": "custom",
}


def profile(uid: str, email: str | None = None) -> UserProfile:
    metadata: JsonObject = {"@private": {"email": email}} if email else {}
    return UserProfile(uid=uid, name=uid.title(), metadata=metadata)


def template(
    channels: Sequence[ChannelType] = ("in_app",),
    variables: Sequence[VariableSpec] | None = None,
    template_id: str = "order-shipped",
    version: int = 1,
) -> TemplateSnapshot:
    contents: dict[ChannelType, JsonObject] = {
        "in_app": IN_APP_CONTENT,
        "email": EMAIL_CONTENT,
        "push": {"title": "Order {{order}}", "body": "Hi {{name}}"},
        "sms": {"text": "Order {{order}} shipped"},
        "custom": {"data": {"order": "{{order}}"}},
    }
    schema = (
        list(variables)
        if variables is not None
        else [
            VariableSpec(key="name", default_value="there"),
            VariableSpec(key="order", required=True),
        ]
    )
    return TemplateSnapshot(
        template_id=template_id,
        version=version,
        channels=[
            TemplateChannel(
                channel_type=channel_type,
                channel_id=CHANNEL_IDS[channel_type],
                content=contents[channel_type],
            )
            for channel_type in channels
        ],
        variable_schema=schema,
    )


def send_command(
    app_id: str,
    send_id: str,
    receivers: Sequence[str],
    *,
    mode: SendMode = "realtime",
    channels: Sequence[ChannelType] = ("in_app",),
    variables: Mapping[str, dict[str, JsonValue]] | None = None,
    common_variables: Mapping[str, JsonValue] | None = None,
    reply_to: ReplyTo | None = None,
    tag: str | None = None,
    chunk: int = 0,
    chunks: int = 1,
    created_at: int = 1_700_000_000,
    template_snapshot: TemplateSnapshot | None = None,
) -> SendNotification:
    return SendNotification(
        app_id=app_id,
        send_id=send_id,
        mode=mode,
        template=template_snapshot or template(channels),
        receivers=list(receivers),
        variables=dict(variables or {}),
        common_variables=dict(
            common_variables if common_variables is not None else {"order": "A-1"}
        ),
        tag=tag,
        chunk=chunk,
        chunks=chunks,
        total=len(receivers),
        reply_to=reply_to,
        created_at=created_at,
    )
