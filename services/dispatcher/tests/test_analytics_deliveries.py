"""Analytics of the channels the delivery workers send: a campaign fanned out on in-app,
push and email (the fan-out's real events), then each queued job's outcome said as its
worker says it (``delivery.domain.status_event``). Every delivery counts once, as sent
or failed, per app, campaign, template, channel and user: none twice (the chunk's
tallies count no queued one), none missed, however often the events come again."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from clarion_dispatcher.analytics import service
from clarion_dispatcher.analytics.domain import Counts, facts_of, rollup_deltas
from clarion_dispatcher.analytics.query import Scope
from clarion_dispatcher.delivery.domain import outcome, status_event
from clarion_dispatcher.testing import InMemoryAnalytics, profile
from clarion_dispatcher.testing.analytics import Crashed
from clarion_dispatcher.testing.world import APP, NOW, TOPICS, BatchWorld
from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.contracts.jobs import DeliveryJob
from clarion_shared.contracts.status import (
    AnyStatusEvent,
    ChannelTally,
    ChunkDispatched,
    DeliveryFailed,
    DeliverySent,
)
from clarion_shared.public.analytics import AnalyticsPublic, AnalyticsQuery

CAMPAIGN = "cmp_workers"
TEMPLATE = "order-shipped"
UIDS = [f"u{n}" for n in range(12)]  # u11 is unknown: it fails at the fan-out
PUSH_FAILED = {"u9", "u10"}
EMAIL_FAILED = {"u10"}
DAY_QUERY = AnalyticsQuery(start_date=str(NOW - 86_400), end_date=str(NOW + 86_400))
BOUNCED = ErrorInfo(code="ERR_PROVIDER_REJECTED", message="550 no such mailbox")
UNREGISTERED = ErrorInfo(code="ERR_INVALID_PUSH_TOKEN", message="UNREGISTERED")


def worker_events(jobs: Sequence[DeliveryJob]) -> list[AnyStatusEvent]:
    """What the workers say of each job: sent, or failed for good."""
    said: list[AnyStatusEvent] = []
    for job in jobs:
        failed = PUSH_FAILED if job.channel_type == "push" else EMAIL_FAILED
        error = (
            (UNREGISTERED if job.channel_type == "push" else BOUNCED) if job.uid in failed else None
        )
        provider_id = None if error else f"prv-{job.job_id}"
        said.append(
            status_event(job, outcome(job, at=NOW + 20, error=error, provider_id=provider_id))
        )
    return said


async def campaign(world: BatchWorld) -> tuple[list[AnyStatusEvent], list[AnyStatusEvent]]:
    """The fan-out's events of a campaign in two chunks, and its workers' events."""
    world.directory.add(APP, *(profile(uid, f"{uid}@example.com") for uid in UIDS[:-1]))
    commands = await world.register(
        CAMPAIGN, UIDS[:6], UIDS[6:], mode="campaign", channels=("in_app", "push", "email")
    )
    fan_out = [p.value for command in commands for p in await world.dispatch(command)]
    jobs = [
        DeliveryJob.model_validate(p.message.model_dump())
        for channel_type in ("push", "email")
        for p in world.publisher.on(TOPICS.jobs(channel_type))
    ]
    assert len(jobs) == 2 * 11  # the unknown receiver has none
    return fan_out, worker_events(jobs)


async def report(
    repo: InMemoryAnalytics, scope: Scope, resource_id: str = "", query: AnalyticsQuery = DAY_QUERY
) -> tuple[int, int]:
    found: AnalyticsPublic = await service.report(
        APP, scope, query, repo=repo, now=NOW, resource_id=resource_id
    )
    assert (found.totals.delivered, found.totals.read, found.totals.engaged) == (0, 0, 0)
    return found.totals.sent, found.totals.failed


async def count_in_fetches(
    repo: InMemoryAnalytics, events: Sequence[AnyStatusEvent], size: int = 7
) -> None:
    for start in range(0, len(events), size):
        await service.count(events[start : start + size], repo=repo, now=NOW)


def channel_query(channel_id: str) -> AnalyticsQuery:
    return AnalyticsQuery(
        dimension="channel",
        dimension_id=channel_id,
        start_date=DAY_QUERY.start_date,
        end_date=DAY_QUERY.end_date,
    )


# 12 receivers on 3 channels: in-app 11 sent (the unknown one failed on all three);
# push 9 sent, 2 failed at the worker; email 10 sent, 1 failed at the worker.
EXPECTED = (11 + 9 + 10, 3 + 2 + 1)


async def assert_every_delivery_counted_once(repo: InMemoryAnalytics) -> None:
    assert sum(EXPECTED) == len(UIDS) * 3  # none missed, none twice
    assert await report(repo, "overview") == EXPECTED
    assert await report(repo, "campaign", CAMPAIGN) == EXPECTED
    assert await report(repo, "template", TEMPLATE) == EXPECTED
    assert await report(repo, "overview", query=channel_query("in-app")) == (11, 1)
    assert await report(repo, "overview", query=channel_query("push")) == (9, 3)
    assert await report(repo, "overview", query=channel_query("email")) == (10, 2)
    assert await report(repo, "user", "u0") == (3, 0)
    assert await report(repo, "user", "u9") == (2, 1)
    assert await report(repo, "user", "u10") == (1, 2)
    assert await report(repo, "user", "u11") == (0, 1)  # the receiver, once
    channels = await service.report(APP, "channels", DAY_QUERY, repo=repo, now=NOW)
    assert {(t.id, t.channel_type, t.sent, t.failed) for t in channels.top or []} == {
        ("in-app", "in_app", 11, 1),
        ("push", "push", 9, 3),
        ("email", "email", 10, 2),
    }


async def test_each_delivery_counts_once_as_sent_or_failed_everywhere() -> None:
    repo = InMemoryAnalytics()
    fan_out, workers = await campaign(BatchWorld())
    await count_in_fetches(repo, fan_out + workers)
    await assert_every_delivery_counted_once(repo)


async def test_workers_events_before_the_fan_outs_count_the_same() -> None:
    repo = InMemoryAnalytics()
    fan_out, workers = await campaign(BatchWorld())
    await count_in_fetches(repo, workers + fan_out, size=5)
    await assert_every_delivery_counted_once(repo)


async def test_a_replay_and_redelivered_jobs_count_nothing_twice() -> None:
    repo = InMemoryAnalytics()
    world = BatchWorld()
    fan_out, workers = await campaign(world)
    await count_in_fetches(repo, fan_out + workers)
    # Each job redelivered to its worker says the same again (its id is derived).
    jobs = [
        DeliveryJob.model_validate(p.message.model_dump())
        for channel_type in ("push", "email")
        for p in world.publisher.on(TOPICS.jobs(channel_type))
    ]
    again = worker_events(jobs)
    assert [e.event_id for e in again] == [e.event_id for e in workers]
    await count_in_fetches(repo, again, size=3)
    # The whole topic read again, in other fetches.
    await count_in_fetches(repo, fan_out + workers, size=11)
    await assert_every_delivery_counted_once(repo)


@pytest.mark.parametrize("step", ["mark", "apply"])
async def test_a_crash_counting_workers_events_is_finished_by_the_redelivery(step: str) -> None:
    repo = InMemoryAnalytics()
    fan_out, workers = await campaign(BatchWorld())
    await count_in_fetches(repo, fan_out)
    repo.crash_after = step  # type: ignore[assignment]
    with pytest.raises(Crashed):
        await service.count(workers, repo=repo, now=NOW)
    await service.count(workers, repo=repo, now=NOW)  # the fetch, redelivered
    await assert_every_delivery_counted_once(repo)
    assert await repo.unapplied() == []


# ---------------------------------------------------------------- the rules


BASE = {"app_id": "a", "send_id": "cmp", "mode": "campaign", "occurred_at": NOW}


def test_a_workers_send_counts_with_every_id_a_chunks_tally_counts_failures_only() -> None:
    sent = DeliverySent(
        event_id="s",
        uid="u1",
        channel_type="email",
        channel_id="mail",
        notification_id="n1",
        template_id="tpl",
        provider_id="p1",
        **BASE,
    )
    [fact] = facts_of(sent)
    assert fact.counts == Counts(sent=1)
    assert (fact.campaign_id, fact.template_id, fact.channel_id, fact.uid) == (
        "cmp",
        "tpl",
        "mail",
        "u1",
    )
    assert {d.series.dimension for d in rollup_deltas([fact])} == {
        "app",
        "campaign",
        "template",
        "channel",
        "channel_type",
        "user",
    }
    # An in-app delivery's send is its feed item's, should a worker ever say it too.
    assert facts_of(sent.model_copy(update={"channel_type": "in_app"})) == []
    chunk = ChunkDispatched(
        event_id="c",
        chunk=0,
        chunks=1,
        total=3,
        sent=3,
        failed=0,
        channels=[ChannelTally(channel_type="email", channel_id="mail", sent=1, queued=2)],
        template_id="tpl",
        **BASE,
    )
    assert facts_of(chunk) == []
    failed = DeliveryFailed(
        event_id="f",
        uid="u2",
        channel_type="email",
        channel_id="mail",
        notification_id="n2",
        template_id="tpl",
        error=BOUNCED,
        **BASE,
    )
    [failure] = facts_of(failed)
    assert (failure.counts, failure.channel_id, failure.user_only) == (
        Counts(failed=1),
        "mail",
        False,
    )
