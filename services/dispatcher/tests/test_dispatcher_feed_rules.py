"""The feed's list rules (CometChat's filters, cursor pages) and engagements: pure rules,
then the use cases on the in-memory fakes."""

from __future__ import annotations

import pytest

from clarion_dispatcher.fanout import domain as fanout
from clarion_dispatcher.feed import service
from clarion_dispatcher.feed.domain import (
    FeedFilter,
    FeedItemNotFound,
    accepted_tags,
    feed_filter,
    feed_item_engaged,
    feed_owner,
)
from clarion_dispatcher.feed.models import Engagement, FeedItem, FeedQuery
from clarion_dispatcher.testing import (
    InMemoryFeed,
    RecordingPublisher,
    profile,
    send_command,
    template,
)
from clarion_shared.contracts.base import Contract
from clarion_shared.contracts.status import FeedItemEngaged
from clarion_shared.cursor import CursorPage, ListParams, NumberedPage
from clarion_shared.errors import Invalid
from clarion_shared.ids import derive_id

APP = "app1"
STATUS = "unit.clarion.status"
NOW = 1_700_000_000


def item(n: int, at: int = NOW, **changes: object) -> FeedItem:
    command = send_command(APP, f"ntf{n}", ["alice"], created_at=at)
    (made,) = fanout.plan_chunk(command, {"alice": profile("alice")}, at).feed_items
    return made.model_copy(update=changes)


# ---------------------------------------------------------------- rules


def test_read_state_all_is_no_filter_and_the_others_are() -> None:
    assert feed_filter(FeedQuery(ListParams(), read_state="all")).read is None
    assert feed_filter(FeedQuery(ListParams(), read_state="read")).read is True
    assert feed_filter(FeedQuery(ListParams(), read_state="unread")).read is False
    assert feed_filter(FeedQuery(ListParams())) == FeedFilter()


def test_tags_any_and_all_on_items_of_one_tag() -> None:
    assert accepted_tags(None, "any") is None
    assert accepted_tags(" , ", "all") is None
    assert accepted_tags("a, b,a", "any") == frozenset({"a", "b"})
    assert accepted_tags("a,a", "all") == frozenset({"a"})
    assert accepted_tags("a,b", "all") == frozenset()  # one tag cannot be two


def test_dates_filter_sent_at_inclusive_and_refuse_an_empty_range() -> None:
    where = feed_filter(FeedQuery(ListParams(), date_from=NOW, date_to=NOW + 5))
    assert where.matches(item(0, NOW))
    assert where.matches(item(1, NOW + 5))
    assert not where.matches(item(2, NOW + 6))
    with pytest.raises(Invalid) as refused:
        feed_filter(FeedQuery(ListParams(), date_from=NOW + 1, date_to=NOW))
    assert refused.value.details == [{"field": "dateFrom", "message": "must not be after dateTo"}]


def test_a_feed_item_carries_its_templates_category() -> None:
    snapshot = template(("in_app",)).model_copy(update={"template_category": "Alerts"})
    command = send_command(APP, "ntf-c", ["alice"], template_snapshot=snapshot)
    (made,) = fanout.plan_chunk(command, {"alice": profile("alice")}, NOW).feed_items
    assert made.template_category == "Alerts"


def test_engagement_events_are_derived_per_topic_and_repeat_exactly() -> None:
    engaged = item(0).model_copy(
        update={
            "engaged_at": NOW + 1,
            "engagements": [Engagement(topic=None, at=NOW + 1), Engagement(topic="x", at=NOW + 2)],
        }
    )
    first, clicked = feed_item_engaged(engaged, None), feed_item_engaged(engaged, "x")
    assert first.event_id == derive_id(engaged.id, "feed_item_engaged:")
    assert clicked.event_id == derive_id(engaged.id, "feed_item_engaged:x")
    assert (first.occurred_at, first.first_engagement, first.topic) == (NOW + 1, True, None)
    assert (clicked.occurred_at, clicked.first_engagement) == (NOW + 2, False)
    assert clicked.feed_item["engagementTopics"] == ["x"]
    assert clicked.feed_item["engagedAt"] == NOW + 1
    assert feed_item_engaged(engaged, "x") == clicked


# ---------------------------------------------------------------- use cases


async def _feed(*items: FeedItem) -> InMemoryFeed:
    feed = InMemoryFeed()
    await feed.add_many(list(items))
    return feed


async def test_a_cursor_walk_reads_the_filtered_feed_once() -> None:
    items = [item(n, NOW + n // 2, tag="t" if n % 3 else None) for n in range(9)]
    feed = await _feed(*items)
    tagged = sorted((i for i in items if i.tag), key=lambda i: (i.sent_at, i.id), reverse=True)
    seen: list[str] = []
    cursor: dict[str, int | str] = {}
    while True:
        params = ListParams(
            limit=2,
            id=str(cursor["id"]) if cursor else None,
            values={"sentAt": cursor.get("sentAt")},
        )
        page = await service.list_feed(APP, "alice", FeedQuery(params, tags="t"), feed=feed)
        assert isinstance(page, CursorPage)
        assert page.field == "sentAt"
        seen += [i.id for i in page.items]
        if page.next is None:
            assert not page.has_more
            break
        cursor = {"sentAt": page.next.value, "id": page.next.id}
    assert seen == [i.id for i in tagged]


async def test_prepend_reads_the_items_newer_than_the_cursor() -> None:
    items = [item(n, NOW + n) for n in range(5)]
    feed = await _feed(*items)
    at = items[1]
    params = ListParams(affix="prepend", limit=2, id=at.id, values={"sentAt": at.sent_at})
    page = await service.list_feed(APP, "alice", FeedQuery(params), feed=feed)
    assert isinstance(page, CursorPage)
    assert [i.id for i in page.items] == [items[3].id, items[2].id]  # newest first, as listed
    assert page.has_more
    assert page.next is not None
    assert page.next.id == items[3].id


async def test_page_mode_in_ascending_order() -> None:
    items = [item(n, NOW + n) for n in range(3)]
    feed = await _feed(*items)
    page = await service.list_feed(
        APP, "alice", FeedQuery(ListParams(page=1, per_page=2, order="asc")), feed=feed
    )
    assert isinstance(page, NumberedPage)
    assert ([i.id for i in page.items], page.total) == ([items[0].id, items[1].id], 3)


class Outage(RecordingPublisher):
    """The broker refuses every event while ``down``: as if the process died there."""

    down: bool = True

    async def publish(self, topic: str, message: Contract, key: str | None) -> None:
        if self.down:
            raise ConnectionError("the broker went away")
        await super().publish(topic, message, key)


async def _engage(
    feed: InMemoryFeed, publisher: RecordingPublisher, topic: str | None, now: int
) -> None:
    await service.engage(
        APP,
        "alice",
        item(0).id,
        topic,
        feed=feed,
        publisher=publisher,
        status_topic=STATUS,
        now=now,
    )


async def test_each_engagement_transition_is_published_once() -> None:
    feed = await _feed(item(0))
    publisher = RecordingPublisher()

    for topic, at in (("clicked", 1), ("clicked", 2), (None, 3), ("shared", 4)):
        await _engage(feed, publisher, topic, NOW + at)

    events = [p.message for p in publisher.on(STATUS)]
    assert all(isinstance(e, FeedItemEngaged) for e in events)
    engaged = [e for e in events if isinstance(e, FeedItemEngaged)]
    assert [(e.topic, e.occurred_at, e.first_engagement) for e in engaged] == [
        ("clicked", NOW + 1, True),
        ("shared", NOW + 4, False),
    ]
    assert {p.key for p in publisher.on(STATUS)} == {"ntf0"}
    stored = feed.items[item(0).id]
    assert stored.engagement_events_pending == []


async def test_an_engagement_event_lost_to_a_crash_is_published_by_the_next_call() -> None:
    feed = await _feed(item(0))
    crashing = Outage()

    with pytest.raises(ConnectionError):
        await _engage(feed, crashing, "clicked", NOW + 1)
    assert feed.items[item(0).id].engagement_events_pending == ["clicked"]
    crashing.down = False
    await _engage(feed, crashing, "clicked", NOW + 9)  # a repeat: owes the lost event
    await _engage(feed, crashing, "clicked", NOW + 10)

    (event,) = crashing.on(STATUS)
    assert isinstance(event.message, FeedItemEngaged)
    assert (event.message.topic, event.message.occurred_at) == ("clicked", NOW + 1)


async def test_engaging_another_users_item_is_not_found() -> None:
    feed = await _feed(item(0))
    with pytest.raises(FeedItemNotFound):
        await service.engage(
            APP,
            "bob",
            item(0).id,
            None,
            feed=feed,
            publisher=RecordingPublisher(),
            status_topic=STATUS,
        )
    assert feed.items[item(0).id].owner == feed_owner(APP, "alice")
