"""Analytics' use cases on the in-memory adapters, fed with the status events the
fan-out and the feed really publish: exact counts, each event once whatever is
redelivered or republished, and exact counts again after a crash at each step."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from clarion_dispatcher.analytics import service
from clarion_dispatcher.analytics.query import Scope
from clarion_dispatcher.feed import service as feed_service
from clarion_dispatcher.testing import InMemoryAnalytics, profile
from clarion_dispatcher.testing.analytics import Crashed
from clarion_dispatcher.testing.world import APP, NOW, BatchWorld
from clarion_shared.contracts.status import AnyStatusEvent, status_event_adapter
from clarion_shared.public.analytics import AnalyticsPublic, AnalyticsQuery

CAMPAIGN = "cmp_1"
TEMPLATE = "order-shipped"
DAY_QUERY = AnalyticsQuery(start_date=str(NOW - 86_400), end_date=str(NOW + 86_400))


async def campaign_events(world: BatchWorld) -> list[AnyStatusEvent]:
    """A campaign to 12 receivers (one unknown) in two chunks, on in-app and push; 5
    items delivered, 3 read, 2 engaged (one twice: another topic)."""
    uids = [f"u{n}" for n in range(12)]
    world.directory.add(APP, *(profile(uid) for uid in uids[:-1]))
    commands = await world.register(
        CAMPAIGN, uids[:6], uids[6:], mode="campaign", channels=("in_app", "push")
    )
    events = [p.value for command in commands for p in await world.dispatch(command)]
    before = len(world.publisher.on(world.status))
    items = {item.receiver: item.id for item in world.feed.items.values()}
    feed, publisher, topic_name = world.feed, world.publisher, world.status
    for uid in uids[:5]:
        await feed_service.mark_delivered(
            APP,
            uid,
            items[uid],
            feed=feed,
            publisher=publisher,
            status_topic=topic_name,
            now=NOW + 30,
        )
    for uid in uids[:3]:
        await feed_service.mark_read(
            APP,
            uid,
            items[uid],
            feed=feed,
            publisher=publisher,
            status_topic=topic_name,
            now=NOW + 60,
        )
    for uid, topic in [("u0", None), ("u1", "clicked"), ("u1", "shared")]:
        await feed_service.engage(
            APP,
            uid,
            items[uid],
            topic,
            feed=feed,
            publisher=publisher,
            status_topic=topic_name,
            now=NOW + 90,
        )
    published = world.publisher.on(world.status)[before:]
    return events + [status_event_adapter.validate_python(p.message) for p in published]


async def report(
    repo: InMemoryAnalytics, scope: Scope, resource_id: str = "", query: AnalyticsQuery = DAY_QUERY
) -> AnalyticsPublic:
    return await service.report(APP, scope, query, repo=repo, now=NOW, resource_id=resource_id)


def totals(found: AnalyticsPublic) -> tuple[int, int, int, int, int]:
    t = found.totals
    return t.sent, t.delivered, t.read, t.engaged, t.failed


EXPECTED_APP = (11, 5, 3, 2, 2)
"""11 in-app items sent (push is queued: not sent yet), 5 delivered, 3 read, 2 engaged;
the unknown receiver failed on both channels."""


async def count_in_fetches(
    repo: InMemoryAnalytics, events: Sequence[AnyStatusEvent], size: int = 7
) -> None:
    for start in range(0, len(events), size):
        await service.count(events[start : start + size], repo=repo, now=NOW)


async def test_a_campaign_is_counted_per_app_campaign_template_channel_and_user() -> None:
    repo = InMemoryAnalytics()
    await count_in_fetches(repo, await campaign_events(BatchWorld()))

    overview = await report(repo, "overview")
    assert totals(overview) == EXPECTED_APP
    assert (overview.rates.delivery, overview.rates.read) == (round(5 / 11, 4), round(3 / 11, 4))
    assert [(t.id, t.sent) for t in overview.top or []] == [(TEMPLATE, 11)]
    assert totals(await report(repo, "campaign", CAMPAIGN)) == EXPECTED_APP
    # The chunk's tallies name the template: its failures count there too.
    assert totals(await report(repo, "template", TEMPLATE)) == (11, 5, 3, 2, 2)
    assert totals(await report(repo, "user", "u1")) == (1, 1, 1, 1, 0)
    assert totals(await report(repo, "user", "u11")) == (0, 0, 0, 0, 1)
    channels = await report(repo, "channels")
    assert totals(channels) == EXPECTED_APP
    assert {(t.id, t.channel_type, t.sent, t.failed) for t in channels.top or []} == {
        ("in-app", "in_app", 11, 1),
        ("push", "push", 0, 1),
    }
    push = AnalyticsQuery(
        dimension="channel",
        dimension_id="push",
        start_date=DAY_QUERY.start_date,
        end_date=DAY_QUERY.end_date,
    )
    assert totals(await report(repo, "overview", query=push)) == (0, 0, 0, 0, 1)


async def test_another_apps_ids_and_unknown_ids_are_zeros() -> None:
    repo = InMemoryAnalytics()
    await count_in_fetches(repo, await campaign_events(BatchWorld()))
    other = await service.report(
        "other-app", "campaign", DAY_QUERY, repo=repo, now=NOW, resource_id=CAMPAIGN
    )
    assert totals(other) == (0, 0, 0, 0, 0)
    assert totals(await report(repo, "template", "nope")) == (0, 0, 0, 0, 0)


async def test_each_event_counts_once_whatever_comes_again() -> None:
    events = await campaign_events(BatchWorld())
    repo = InMemoryAnalytics()
    await count_in_fetches(repo, events)
    # A redelivered fetch, a republished event among new ones, the whole topic replayed.
    await service.count(events[:7], repo=repo, now=NOW)
    await count_in_fetches(repo, list(reversed(events)), size=5)
    await count_in_fetches(repo, events + events, size=50)
    assert totals(await report(repo, "overview")) == EXPECTED_APP
    assert totals(await report(repo, "user", "u0")) == (1, 1, 1, 1, 0)
    assert repo.pending == {}  # a fetch of events counted before leaves nothing pending


@pytest.mark.parametrize("step", ["mark", "apply"])
async def test_a_crash_after_a_step_is_finished_by_the_redelivery(step: str) -> None:
    events = await campaign_events(BatchWorld())
    repo = InMemoryAnalytics()
    repo.crash_after = step  # type: ignore[assignment]
    with pytest.raises(Crashed):
        await service.count(events[:20], repo=repo, now=NOW)
    # Not committed: the same fetch comes again, all duplicates now.
    await service.count(events[:20], repo=repo, now=NOW)
    await count_in_fetches(repo, events[20:])
    assert totals(await report(repo, "overview")) == EXPECTED_APP
    assert await repo.unapplied() == []


@pytest.mark.parametrize("step", ["mark", "apply"])
async def test_a_crash_after_a_step_is_finished_by_the_sweep(step: str) -> None:
    events = await campaign_events(BatchWorld())
    repo = InMemoryAnalytics()
    await count_in_fetches(repo, events[:10])
    repo.crash_after = step  # type: ignore[assignment]
    with pytest.raises(Crashed):
        await service.count(events[10:30], repo=repo, now=NOW)
    # Committed elsewhere (another instance took the partition past it): only the sweep.
    await count_in_fetches(repo, events[30:])
    assert await service.sweep(repo, now=NOW + 5, grace_s=30, keep_days=30) == 0  # too young
    # Applied but not confirmed: counted already; marked only: not yet.
    assert (totals(await report(repo, "overview")) == EXPECTED_APP) == (step == "apply")
    assert await service.sweep(repo, now=NOW + 31, grace_s=30, keep_days=30) == 1
    assert totals(await report(repo, "overview")) == EXPECTED_APP
    assert totals(await report(repo, "template", TEMPLATE)) == (11, 5, 3, 2, 2)
    assert await service.sweep(repo, now=NOW + 62, grace_s=30, keep_days=30) == 0
    assert totals(await report(repo, "overview")) == EXPECTED_APP


async def test_old_marks_are_forgotten_unapplied_ones_kept() -> None:
    events = await campaign_events(BatchWorld())
    repo = InMemoryAnalytics()
    await count_in_fetches(repo, events[:10])
    repo.crash_after = "mark"
    with pytest.raises(Crashed):
        await service.count(events[10:20], repo=repo, now=NOW)
    marked = len(repo.marks)
    await service.sweep(repo, now=NOW + 29 * 86_400, grace_s=10**9, keep_days=30)
    assert len(repo.marks) == marked
    await service.sweep(repo, now=NOW + 32 * 86_400, grace_s=10**9, keep_days=30)
    assert len(repo.marks) == marked - len(
        [e for e in events[:10] if e.type != "notification_created"]
    )
    assert len(await repo.unapplied()) > 0


async def test_events_not_counted_write_nothing() -> None:
    events = await campaign_events(BatchWorld())
    repo = InMemoryAnalytics()
    created = [e for e in events if e.type == "notification_created"]
    assert await service.count(created, repo=repo, now=NOW) == 0
    assert repo.marks == {}
    assert repo.apply_calls == 0
