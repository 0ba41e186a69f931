"""In-memory stand-ins for the campaign ports, with the Mongo adapters' behaviour
(``tests/test_gateway_campaigns_repository.py`` runs the same cases on both)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from clarion_shared.contracts.status import AnyStatusEvent, CampaignFinished

from ..campaigns.domain import Campaign, Recipient
from ..campaigns.progress import StatusHandler
from ..campaigns.tracking import ChunkReport, Mark, MarkKind, Settled, Settlement, mark_key


class MemoryCampaigns:
    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], Campaign] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def insert(self, campaign: Campaign) -> bool:
        key = (campaign.app_id, campaign.campaign_id)
        if key in self.docs:
            return False
        self.docs[key] = campaign
        return True

    async def get(self, app_id: str, campaign_id: str) -> Campaign | None:
        return self.docs.get((app_id, campaign_id))

    async def list_for_app(self, app_id: str) -> list[Campaign]:
        return [c for (app, _), c in self.docs.items() if app == app_id]

    async def replace(self, campaign: Campaign) -> bool:
        key = (campaign.app_id, campaign.campaign_id)
        stored = self.docs.get(key)
        if stored is None or stored.revision != campaign.revision:
            return False
        self.docs[key] = replace(campaign, revision=campaign.revision + 1)
        return True

    async def delete(self, campaign: Campaign) -> bool:
        key = (campaign.app_id, campaign.campaign_id)
        stored = self.docs.get(key)
        if stored is None or stored.revision != campaign.revision:
            return False
        del self.docs[key]
        return True

    async def due(self, now: int, stalled_before: int) -> list[Campaign]:
        scheduled = [
            c
            for c in self.docs.values()
            if c.status == "scheduled" and c.scheduled_at is not None and c.scheduled_at <= now
        ]
        stalled = [
            c
            for c in self.docs.values()
            if c.status == "sending"
            and c.dispatched_at is None
            and (c.started_at or 0) < stalled_before
        ]
        return scheduled + stalled


class MemoryRecipients:
    def __init__(self) -> None:
        self.docs: dict[tuple[str, str, str], Recipient] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def uids(self, app_id: str, campaign_id: str) -> set[str]:
        return {uid for (app, cid, uid) in self.docs if (app, cid) == (app_id, campaign_id)}

    async def add(self, recipients: Sequence[Recipient]) -> None:
        for r in recipients:
            self.docs.setdefault((r.app_id, r.campaign_id, r.uid), r)

    async def list(self, app_id: str, campaign_id: str) -> list[Recipient]:
        return [r for (app, cid, _), r in self.docs.items() if (app, cid) == (app_id, campaign_id)]

    async def delete_all(self, app_id: str, campaign_id: str) -> None:
        for key in [k for k in self.docs if k[:2] == (app_id, campaign_id)]:
            del self.docs[key]


class MemoryCampaignTracking:
    """``tracking.TrackingRepository`` in memory."""

    def __init__(self) -> None:
        self.chunks: dict[tuple[str, str, int], ChunkReport] = {}
        self.marks: dict[tuple[str, ...], Mark] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def put_reports(self, reports: Sequence[ChunkReport]) -> None:
        for r in reports:
            kept = self.chunks.get((r.app_id, r.campaign_id, r.chunk))
            self.chunks[(r.app_id, r.campaign_id, r.chunk)] = replace(
                r, settled=kept.settled if kept is not None else ()
            )

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        for s in settlements:
            if not s.receivers:
                continue
            key = (s.app_id, s.campaign_id, s.chunk)
            kept = self.chunks.get(key) or ChunkReport(s.app_id, s.campaign_id, s.chunk, 0, (), ())
            settled = {one.state.uid: one for one in kept.settled}
            settled.update((state.uid, Settled(state, s.at)) for state in s.receivers)
            ordered = tuple(sorted(settled.values(), key=lambda one: one.state.uid))
            self.chunks[key] = replace(kept, settled=ordered)

    async def reports(self, app_id: str, campaign_id: str) -> list[ChunkReport]:
        return [r for k, r in sorted(self.chunks.items()) if k[:2] == (app_id, campaign_id)]

    async def chunk_reports(
        self, app_id: str, campaign_id: str, chunks: Sequence[int]
    ) -> list[ChunkReport]:
        found = (self.chunks.get((app_id, campaign_id, chunk)) for chunk in dict.fromkeys(chunks))
        return [r for r in found if r is not None]

    async def mark(self, marks: Sequence[Mark]) -> None:
        for m in marks:
            self.marks.setdefault(mark_key(m), m)

    async def marked(self, app_id: str, campaign_id: str, kind: MarkKind, channel_id: str) -> int:
        wanted = (app_id, campaign_id, channel_id, kind)
        found = ((m.app_id, m.campaign_id, m.channel_id, m.kind) for m in self.marks.values())
        return sum(1 for one in found if one == wanted)


class MemoryAudienceLocks:
    def __init__(self) -> None:
        self.held: dict[tuple[str, str], tuple[str, int]] = {}

    async def acquire(
        self, app_id: str, campaign_id: str, holder: str, now: int, lease_s: int
    ) -> bool:
        current = self.held.get((app_id, campaign_id))
        if current is not None and current[1] > now:
            return False
        self.held[(app_id, campaign_id)] = (holder, now + lease_s)
        return True

    async def release(self, app_id: str, campaign_id: str, holder: str) -> None:
        current = self.held.get((app_id, campaign_id))
        if current is not None and current[0] == holder:
            del self.held[(app_id, campaign_id)]


class MemoryDirectory:
    """The user-directory's internal API on a dict: ``users[app_id]`` holds each user's
    fields as the users list filters them (``role``, ``status``, ``name``, ...), in the
    users list's order (insertion here)."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, dict[str, Any]]] = {}
        self.calls: list[tuple[str, int]] = []

    def add_users(self, app_id: str, *uids: str, **fields: Any) -> None:
        for uid in uids:
            self.users.setdefault(app_id, {})[uid] = {"uid": uid, **fields}

    async def existing(self, app_id: str, uids: Sequence[str]) -> set[str]:
        self.calls.append(("existing", len(uids)))
        known = self.users.get(app_id, {})
        return {uid for uid in uids if uid in known}

    async def select(
        self, app_id: str, filters: Mapping[str, Any], limit: int
    ) -> tuple[list[str], bool]:
        self.calls.append(("select", limit))
        matched = [
            uid
            for uid, user in self.users.get(app_id, {}).items()
            if all(
                user.get(key) == value or (key == "searchKey" and str(value) in uid)
                for key, value in filters.items()
            )
        ]
        return matched[:limit], len(matched) > limit


class MemoryFinishedPublisher:
    """``finished.FinishedPublisher`` in memory: ``published`` keeps every event, in
    order; ``fail_with`` makes every publish raise it (a broker error, as Kafka's)."""

    def __init__(self) -> None:
        self.published: list[CampaignFinished] = []
        self.fail_with: Exception | None = None

    async def campaign_finished(self, event: CampaignFinished) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.published.append(event)


class MemoryCampaignEvents:
    """``progress.CampaignEvents`` in one process: ``deliver`` hands events to the
    subscribed handler, as the Kafka consumer does with each fetch."""

    def __init__(self) -> None:
        self.handler: StatusHandler | None = None

    def subscribe(self, handle: StatusHandler) -> None:
        self.handler = handle

    async def ready(self) -> bool:
        return True

    async def deliver(self, *events: AnyStatusEvent) -> None:
        assert self.handler is not None, "nothing subscribed"
        await self.handler(list(events))
