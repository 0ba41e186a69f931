"""The in-memory feed (the port of ``feed.service``), run through the same repository
suite as ``MongoFeed``: same order (``sort_key``), same filters, same transitions."""

from __future__ import annotations

from collections.abc import Sequence

from ..feed.domain import FeedFilter, sort_key
from ..feed.models import Engagement, FeedEvent, FeedItem, FeedTransition


class InMemoryFeed:
    def __init__(self, journal: list[str] | None = None) -> None:
        self.items: dict[str, FeedItem] = {}
        self.write_calls = 0
        self._journal = journal

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def add_many(self, items: Sequence[FeedItem]) -> None:
        self.write_calls += 1
        if self._journal is not None:
            self._journal.append(f"feed:{len(items)}")
        for item in items:
            self.items.setdefault(item.id, item)

    async def remove_many(self, item_ids: Sequence[str]) -> None:
        for item_id in item_ids:
            self.items.pop(item_id, None)

    def _owned(self, owner: str, where: FeedFilter = FeedFilter()) -> list[FeedItem]:
        return [item for item in self.items.values() if item.owner == owner and where.matches(item)]

    async def page(
        self, owner: str, where: FeedFilter, ascending: bool, skip: int, limit: int
    ) -> tuple[list[FeedItem], int]:
        matching = sorted(self._owned(owner, where), key=sort_key, reverse=not ascending)
        return matching[skip : skip + limit], len(matching)

    async def scan(
        self, owner: str, where: FeedFilter, beyond: str | None, ascending: bool, limit: int
    ) -> list[FeedItem]:
        matching = sorted(self._owned(owner, where), key=sort_key, reverse=not ascending)
        if beyond is not None:
            matching = [
                i for i in matching if (sort_key(i) > beyond if ascending else sort_key(i) < beyond)
            ]
        return matching[:limit]

    async def unread_count(self, owner: str) -> int:
        return len(self._owned(owner, FeedFilter(read=False)))

    async def get(self, owner: str, item_id: str) -> FeedItem | None:
        item = self.items.get(item_id)
        return item if item is not None and item.owner == owner else None

    async def mark_read(self, owner: str, item_id: str, at: int) -> FeedTransition | None:
        item = await self.get(owner, item_id)
        if item is None:
            return None
        if item.read:
            return FeedTransition(item=item, changed=False)
        return self._changed(
            item,
            read=True,
            read_at=at,
            status="read",
            read_event_pending=True,
            updated_at=at,
        )

    async def mark_delivered(self, owner: str, item_id: str, at: int) -> FeedTransition | None:
        item = await self.get(owner, item_id)
        if item is None:
            return None
        if item.delivered_at is not None:
            return FeedTransition(item=item, changed=False)
        status = item.status if item.read else "delivered"
        return self._changed(
            item, delivered_at=at, status=status, delivered_event_pending=True, updated_at=at
        )

    async def engage(
        self, owner: str, item_id: str, topic: str | None, at: int
    ) -> FeedTransition | None:
        item = await self.get(owner, item_id)
        if item is None:
            return None
        first = item.engaged_at is None
        if not first and (topic is None or item.engagement_of(topic) is not None):
            return FeedTransition(item=item, changed=False)
        return self._changed(
            item,
            engaged_at=at if first else item.engaged_at,
            engagements=[*item.engagements, Engagement(topic=topic, at=at)],
            engagement_events_pending=[*item.engagement_events_pending, topic],
            updated_at=at,
        )

    async def engagement_published(self, owner: str, item_id: str, topic: str | None) -> None:
        item = await self.get(owner, item_id)
        if item is not None:
            owed = [t for t in item.engagement_events_pending if t != topic]
            self.items[item_id] = item.model_copy(update={"engagement_events_pending": owed})

    def _changed(self, item: FeedItem, **changes: object) -> FeedTransition:
        changed = item.model_copy(update=changes)
        self.items[item.id] = changed
        return FeedTransition(item=changed, changed=True)

    async def event_published(self, owner: str, item_id: str, event: FeedEvent) -> None:
        item = await self.get(owner, item_id)
        if item is not None:
            self.items[item_id] = item.model_copy(update={f"{event}_event_pending": False})

    async def delete(self, owner: str, item_id: str) -> bool:
        if await self.get(owner, item_id) is None:
            return False
        del self.items[item_id]
        return True
