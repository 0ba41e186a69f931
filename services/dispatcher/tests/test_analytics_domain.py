"""Analytics' pure rules: what each status event adds, where it lands, the UTC buckets,
the window a request asks (and its 400s), and the answer's sums and rates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clarion_dispatcher.analytics.domain import (
    Counts,
    Fact,
    batch_id,
    bucket_count,
    bucket_start,
    facts_of,
    next_bucket,
    rollup_deltas,
    spans,
)
from clarion_dispatcher.analytics.query import (
    MAX_BUCKETS,
    Row,
    Selection,
    answer,
    parse_date,
    ranked,
    rate,
    selection,
    window,
)
from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.contracts.status import (
    ChannelTally,
    ChunkDispatched,
    DeliveryFailed,
    FeedItemEngaged,
    FeedItemRead,
    FeedItemSent,
)
from clarion_shared.errors import Invalid
from clarion_shared.public.analytics import AnalyticsQuery


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


ITEM = {
    "receiver": "u1",
    "templateId": "tpl",
    "channelId": "feed",
    "channelType": "in_app",
    "campaignId": "cmp",
}
BASE = {
    "app_id": "a",
    "send_id": "cmp",
    "mode": "campaign",
    "occurred_at": ts("2024-03-10T10:30:00"),
}


# ---------------------------------------------------------------- facts


def test_an_in_app_send_counts_from_its_feed_item_with_every_id() -> None:
    [fact] = facts_of(FeedItemSent(event_id="e1", feed_item=ITEM, **BASE))
    assert fact.counts == Counts(sent=1)
    assert (fact.campaign_id, fact.template_id, fact.channel_id, fact.uid) == (
        "cmp",
        "tpl",
        "feed",
        "u1",
    )
    assert fact.channel_type == "in_app"
    assert not fact.user_only


def test_only_a_first_engagement_counts() -> None:
    first = FeedItemEngaged(event_id="e", feed_item=ITEM, first_engagement=True, **BASE)
    topic = FeedItemEngaged(
        event_id="f", feed_item=ITEM, topic="clicked", first_engagement=False, **BASE
    )
    assert [f.counts for f in facts_of(first)] == [Counts(engaged=1)]
    assert facts_of(topic) == []


def test_a_chunk_counts_every_channels_failures_and_no_sends() -> None:
    chunk = ChunkDispatched(
        event_id="c",
        chunk=0,
        chunks=1,
        total=3,
        sent=2,
        failed=1,
        channels=[
            ChannelTally(channel_type="in_app", channel_id="feed", sent=2, failed=1),
            ChannelTally(channel_type="push", channel_id="fcm", sent=2, failed=1, queued=0),
            ChannelTally(channel_type="email", channel_id="ses", queued=2, failed=1),
            ChannelTally(channel_type="sms", channel_id="twilio", queued=3),
        ],
        **BASE,
    )
    facts = {f.channel_id: f.counts for f in facts_of(chunk)}
    # Sends are counted from each delivery's own event (FeedItemSent, DeliverySent),
    # which names its user: never from a tally as well.
    assert facts == {
        "feed": Counts(failed=1),
        "fcm": Counts(failed=1),
        "ses": Counts(failed=1),
    }


def test_a_fan_out_failure_counts_for_its_user_alone_a_later_one_everywhere() -> None:
    error = ErrorInfo(code="ERR_USER_NOT_FOUND", message="x")
    [at_fan_out] = facts_of(DeliveryFailed(event_id="d", uid="u9", error=error, **BASE))
    [later] = facts_of(
        DeliveryFailed(
            event_id="d2", uid="u9", error=error, channel_type="push", channel_id="fcm", **BASE
        )
    )
    fan_out_dims = {(d.series.dimension, d.series.stored) for d in rollup_deltas([at_fan_out])}
    assert fan_out_dims == {("user", "day")}
    later_dims = {d.series.dimension for d in rollup_deltas([later])}
    assert later_dims == {"app", "campaign", "channel", "channel_type", "user"}


def test_facts_land_in_hour_and_day_rollups_users_in_day_only() -> None:
    sent = facts_of(FeedItemSent(event_id="e1", feed_item=ITEM, **BASE))
    read = facts_of(FeedItemRead(event_id="e2", feed_item=ITEM, **BASE))
    deltas = rollup_deltas(sent + read + sent)
    by = {(d.series.dimension, d.series.stored): d for d in deltas}
    assert set(by) == {
        *(
            (dim, p)
            for dim in ("app", "campaign", "template", "channel", "channel_type")
            for p in ("hour", "day")
        ),
        ("user", "day"),
    }
    assert by[("app", "hour")].bucket == ts("2024-03-10T10:00:00")
    assert by[("app", "day")].bucket == ts("2024-03-10T00:00:00")
    assert by[("template", "day")].counts == Counts(sent=2, read=1)
    assert by[("channel", "day")].label == "in_app"
    assert by[("template", "day")].ranking_key is not None
    assert by[("template", "hour")].ranking_key is None
    assert by[("app", "day")].ranking_key is None
    assert len({d.rollup_id for d in deltas}) == len(deltas)


def test_a_batch_id_is_derived_from_its_events_in_any_order() -> None:
    assert batch_id(["a", "b"]) == batch_id(["b", "a"]) != batch_id(["a"])


# ---------------------------------------------------------------- buckets


@pytest.mark.parametrize(
    ("at", "period", "start"),
    [
        ("2024-03-10T10:59:59", "hour", "2024-03-10T10:00:00"),
        ("2024-03-10T00:00:00", "day", "2024-03-10T00:00:00"),
        ("2024-03-10T23:59:59", "day", "2024-03-10T00:00:00"),
        ("2024-03-10T12:00:00", "week", "2024-03-04T00:00:00"),  # a Sunday: Monday before
        ("2024-03-11T00:00:00", "week", "2024-03-11T00:00:00"),  # a Monday
        ("2021-01-01T00:00:00", "week", "2020-12-28T00:00:00"),  # ISO week 53 of 2020
        ("2024-02-29T23:00:00", "month", "2024-02-01T00:00:00"),
        ("1970-01-01T00:00:00", "week", "1969-12-29T00:00:00"),
    ],
)
def test_bucket_starts_in_utc(at: str, period: str, start: str) -> None:
    assert bucket_start(ts(at), period) == ts(start)  # type: ignore[arg-type]


def test_next_buckets_and_counts() -> None:
    assert next_bucket(ts("2024-12-01T00:00:00"), "month") == ts("2025-01-01T00:00:00")
    assert next_bucket(ts("2024-02-01T00:00:00"), "month") == ts("2024-03-01T00:00:00")
    assert bucket_count(ts("2024-11-01T00:00:00"), ts("2025-02-01T00:00:00"), "month") == 4
    assert bucket_count(ts("2024-03-04T00:00:00"), ts("2024-03-18T00:00:00"), "week") == 3
    assert bucket_count(ts("2024-03-10T00:00:00"), ts("2024-03-10T23:00:00"), "hour") == 24


def test_spans_cover_hour_rollups_by_month_and_day_rollups_by_year() -> None:
    assert spans(ts("2024-01-31T23:00:00"), ts("2024-02-01T01:00:00"), "hour") == [
        ts("2024-01-01T00:00:00"),
        ts("2024-02-01T00:00:00"),
    ]
    assert spans(ts("2023-12-31T00:00:00"), ts("2024-01-01T00:00:00"), "day") == [
        ts("2023-01-01T00:00:00"),
        ts("2024-01-01T00:00:00"),
    ]


# ---------------------------------------------------------------- the window


NOW = ts("2024-03-10T10:30:00")


def test_dates_are_unix_seconds_or_iso_8601() -> None:
    assert parse_date("1710066600", "startDate") == 1_710_066_600
    assert parse_date("2024-03-10", "startDate") == ts("2024-03-10T00:00:00")
    assert parse_date("2024-03-10T10:30:00Z", "startDate") == NOW
    assert parse_date("2024-03-10T12:30:00+02:00", "startDate") == NOW


@pytest.mark.parametrize(
    "query",
    [
        AnalyticsQuery(start_date="2024-03-11", end_date="2024-03-10"),
        AnalyticsQuery(start_date="yesterday"),
        AnalyticsQuery(end_date="-5"),
        AnalyticsQuery(start_date="0", period="hour"),  # decades of hours
        AnalyticsQuery(start_date="1999-01-01", period="daily"),
    ],
)
def test_a_bad_range_is_invalid(query: AnalyticsQuery) -> None:
    with pytest.raises(Invalid):
        window(query, NOW)


def test_the_window_holds_every_bucket_the_range_touches() -> None:
    frame = window(AnalyticsQuery(period="hourly", start_date="2024-03-10T08:15:00"), NOW)
    assert (frame.period, frame.first, frame.last) == (
        "hour",
        ts("2024-03-10T08:00:00"),
        ts("2024-03-10T10:00:00"),
    )
    assert frame.end == ts("2024-03-10T11:00:00")
    days = window(AnalyticsQuery(), NOW)
    assert (days.period, days.last) == ("day", ts("2024-03-10T00:00:00"))
    assert days.first == ts("2024-02-10T00:00:00")  # 30 days by default
    big = window(AnalyticsQuery(period="day", start_date="2021-06-15", end_date="2024-03-10"), NOW)
    assert (big.last - big.first) // 86_400 + 1 == MAX_BUCKETS


def test_a_users_hourly_breakdown_is_invalid_other_selections() -> None:
    with pytest.raises(Invalid):
        selection("user", AnalyticsQuery(period="hour"), "u1")
    assert selection("user", AnalyticsQuery(), "u1") == Selection("user", "u1")
    assert selection("overview", AnalyticsQuery()) == Selection("app", "", top="template")
    assert selection(
        "overview", AnalyticsQuery(dimension="channel", dimension_id="push")
    ) == Selection("channel_type", "push", top="channel")
    assert selection(
        "overview", AnalyticsQuery(dimension="campaign", dimension_id="c1")
    ) == Selection("campaign", "c1", top="campaign")
    assert selection("channels", AnalyticsQuery(dimension_id="feed")) == Selection(
        "channel", "feed", top="channel"
    )
    assert selection(
        "template", AnalyticsQuery(dimension="campaign", dimension_id="c1"), "t1"
    ) == Selection("template", "t1")


# ---------------------------------------------------------------- the answer


def test_weeks_and_months_are_sums_of_days_with_zero_buckets() -> None:
    rows = [
        Row("", ts("2024-02-28T00:00:00"), Counts(sent=2, read=1)),
        Row("", ts("2024-03-03T00:00:00"), Counts(sent=3, delivered=3)),  # a Sunday
        Row("", ts("2024-03-04T00:00:00"), Counts(sent=5, engaged=1)),
    ]
    months = window(
        AnalyticsQuery(period="month", start_date="2024-01-15", end_date="2024-03-10"), NOW
    )
    result = answer(months, rows)
    assert [(b.bucket, b.sent) for b in result.series] == [
        (ts("2024-01-01T00:00:00"), 0),
        (ts("2024-02-01T00:00:00"), 2),
        (ts("2024-03-01T00:00:00"), 8),
    ]
    weeks = window(
        AnalyticsQuery(period="week", start_date="2024-02-26", end_date="2024-03-10"), NOW
    )
    assert [b.sent for b in answer(weeks, rows).series] == [5, 5]
    assert result.totals.model_dump() == {
        "sent": 10,
        "delivered": 3,
        "read": 1,
        "engaged": 1,
        "failed": 0,
    }
    assert (result.rates.delivery, result.rates.read, result.rates.engagement) == (
        0.3,
        0.1,
        0.1,
    )


def test_rates_with_nothing_sent_are_zero() -> None:
    assert rate(0, 0) == 0.0
    assert rate(3, 0) == 0.0
    assert rate(1, 3) == 0.3333
    empty = answer(window(AnalyticsQuery(period="hour"), NOW), [])
    assert (empty.rates.delivery, empty.rates.read, empty.rates.engagement) == (0.0, 0.0, 0.0)
    assert len(empty.series) == 24
    assert all(b.sent == 0 for b in empty.series)


def test_the_top_ranks_by_sent_summed_over_days_and_keeps_the_limit() -> None:
    rows = [
        Row("b", 1, Counts(sent=3), "push"),
        Row("a", 2, Counts(sent=2, failed=1), "in_app"),
        Row("b", 2, Counts(sent=1), "push"),
        Row("c", 2, Counts(sent=2, failed=4), "email"),
    ]
    top = ranked("channel", rows, 2)
    assert [(t.id, t.sent, t.channel_type) for t in top] == [("b", 4, "push"), ("c", 2, "email")]
    assert ranked("template", rows, 10)[0].channel_type is None


def test_facts_are_stored_compact() -> None:
    fact = Fact(app_id="a", at=1, counts=Counts(sent=1))
    assert Fact.model_validate(fact.model_dump()) == fact
