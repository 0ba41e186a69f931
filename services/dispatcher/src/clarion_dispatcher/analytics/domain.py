"""Pure rules of counting: what each status event adds (its facts), which rollup
documents a fact lands in, and the UTC buckets (hour, day, ISO week, month).

A delivery is one receiver on one channel. Each count comes from exactly one event:

- ``sent``: from the delivery's own event, which names the user, the channel and the
  template: an in-app delivery's ``FeedItemSent``, another channel's ``DeliverySent``
  (its worker's: the provider accepted it). A chunk's ``ChunkDispatched`` tallies count
  no sends: the fan-out sends in-app items only (said by their feed items), and what
  it queued for a worker is not sent yet (the worker says it, once).
- ``delivered``, ``read``: ``FeedItemDelivered``, ``FeedItemRead`` (one per item).
- ``engaged``: ``FeedItemEngaged`` with ``first_engagement`` only.
- ``failed``: a fan-out failure per channel from the chunk's tallies; its
  ``DeliveryFailed`` (one per receiver, no channel) counts for that user alone. A
  ``DeliveryFailed`` naming a channel (a worker's: a queued delivery that failed for
  good, which no tally counted, as the tallies count queued ones apart) counts
  everywhere.

Failure events name the send's template (events published before they did count for
no template).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.status import (
    AnyStatusEvent,
    ChunkDispatched,
    DeliveryFailed,
    DeliverySent,
    FeedItemDelivered,
    FeedItemEngaged,
    FeedItemRead,
    FeedItemSent,
)
from clarion_shared.ids import derive_id
from clarion_shared.public.analytics import Period

IN_APP = "in_app"
HOUR = 3_600
DAY = 86_400
METRICS = ("sent", "delivered", "read", "engaged", "failed")

Dimension = Literal["app", "campaign", "template", "channel", "channel_type", "user"]
StoredPeriod = Literal["hour", "day"]

RANKED: tuple[Dimension, ...] = ("campaign", "template", "channel")
"""Dimensions whose day rollups carry a ranking key (``top``)."""
HOURLY: tuple[Dimension, ...] = ("app", "campaign", "template", "channel", "channel_type")
"""Dimensions kept by the hour too; a user's rollups are daily only (one document per
receiver and hour would double a send's writes for a breakdown nobody asks of a user)."""


class Counts(BaseModel):
    model_config = ConfigDict(frozen=True)

    sent: int = 0
    delivered: int = 0
    read: int = 0
    engaged: int = 0
    failed: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(**{m: getattr(self, m) + getattr(other, m) for m in METRICS})

    def nonzero(self) -> dict[str, int]:
        return {m: n for m in METRICS if (n := getattr(self, m))}


class Fact(BaseModel):
    """What one event adds, with the ids it can be attributed to (None: not known from
    the event). ``user_only``: counted for the user alone (counted elsewhere already)."""

    model_config = ConfigDict(frozen=True)

    app_id: str
    at: int
    counts: Counts
    campaign_id: str | None = None
    template_id: str | None = None
    channel_id: str | None = None
    channel_type: str | None = None
    uid: str | None = None
    user_only: bool = False


def _text(item: JsonObject, key: str) -> str | None:
    value = item.get(key)
    return value if isinstance(value, str) and value else None


def _campaign(event: AnyStatusEvent) -> str | None:
    return event.send_id if event.mode == "campaign" else None


def _feed_fact(event: AnyStatusEvent, item: JsonObject, counts: Counts) -> Fact:
    return Fact(
        app_id=event.app_id,
        at=event.occurred_at,
        counts=counts,
        campaign_id=_campaign(event),
        template_id=_text(item, "templateId"),
        channel_id=_text(item, "channelId"),
        channel_type=_text(item, "channelType") or IN_APP,
        uid=_text(item, "receiver"),
    )


def _tally_facts(event: ChunkDispatched) -> Iterator[Fact]:
    for tally in event.channels:
        if tally.failed:
            yield Fact(
                app_id=event.app_id,
                at=event.occurred_at,
                counts=Counts(failed=tally.failed),
                campaign_id=_campaign(event),
                template_id=event.template_id,
                channel_id=tally.channel_id,
                channel_type=tally.channel_type,
            )


def _delivery_fact(event: DeliverySent | DeliveryFailed, counts: Counts) -> Fact:
    return Fact(
        app_id=event.app_id,
        at=event.occurred_at,
        counts=counts,
        campaign_id=_campaign(event),
        template_id=event.template_id,
        channel_id=event.channel_id,
        channel_type=event.channel_type,
        uid=event.uid,
        user_only=event.channel_id is None,
    )


def facts_of(event: AnyStatusEvent) -> list[Fact]:
    """What ``event`` adds to the rollups (nothing, for the events not counted)."""
    match event:
        case FeedItemSent():
            return [_feed_fact(event, event.feed_item, Counts(sent=1))]
        case FeedItemDelivered():
            return [_feed_fact(event, event.feed_item, Counts(delivered=1))]
        case FeedItemRead():
            return [_feed_fact(event, event.feed_item, Counts(read=1))]
        case FeedItemEngaged(first_engagement=True):
            return [_feed_fact(event, event.feed_item, Counts(engaged=1))]
        case DeliverySent() if event.channel_type != IN_APP:  # in-app: its feed item's
            return [_delivery_fact(event, Counts(sent=1))]
        case DeliveryFailed():
            return [_delivery_fact(event, Counts(failed=1))]
        case ChunkDispatched():
            return list(_tally_facts(event))
    return []


# ---------------------------------------------------------------- buckets


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _month_start(ts: int) -> int:
    at = _utc(ts)
    return int(datetime(at.year, at.month, 1, tzinfo=UTC).timestamp())


def _year_start(ts: int) -> int:
    return int(datetime(_utc(ts).year, 1, 1, tzinfo=UTC).timestamp())


def bucket_start(ts: int, period: Period) -> int:
    """The start of the UTC bucket holding ``ts``; a week starts on Monday (ISO 8601)."""
    if period == "hour":
        return ts - ts % HOUR
    day = ts // DAY
    if period == "day":
        return day * DAY
    if period == "week":
        return (day - (day + 3) % 7) * DAY  # 1970-01-01 was a Thursday
    return _month_start(ts)


def next_bucket(start: int, period: Period) -> int:
    """The start of the bucket after the one starting at ``start``."""
    if period == "hour":
        return start + HOUR
    if period == "day":
        return start + DAY
    if period == "week":
        return start + 7 * DAY
    at = _utc(start)
    year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp())


def bucket_count(first: int, last: int, period: Period) -> int:
    """How many buckets from the one starting at ``first`` to the one at ``last``."""
    if period == "month":
        a, b = _utc(first), _utc(last)
        return (b.year - a.year) * 12 + b.month - a.month + 1
    size = {"hour": HOUR, "day": DAY, "week": 7 * DAY}[period]
    return (last - first) // size + 1


def buckets(first: int, last: int, period: Period) -> list[int]:
    """Every bucket start from ``first`` to ``last`` (both bucket starts), in order."""
    found: list[int] = []
    current = first
    while current <= last:
        found.append(current)
        current = next_bucket(current, period)
    return found


def span_start(bucket: int, stored: StoredPeriod) -> int:
    """The span a stored rollup is read with: hour rollups by month (at most 744 a
    query), day rollups by year (at most 366)."""
    return _month_start(bucket) if stored == "hour" else _year_start(bucket)


def spans(first: int, last: int, stored: StoredPeriod) -> list[int]:
    """The span starts covering the stored buckets from ``first`` to ``last``."""
    step: Period = "month" if stored == "hour" else "day"
    found: list[int] = []
    current = span_start(first, stored)
    while current <= last:
        found.append(current)
        if stored == "hour":
            current = next_bucket(current, step)
        else:
            current = int(datetime(_utc(current).year + 1, 1, 1, tzinfo=UTC).timestamp())
    return found


# ---------------------------------------------------------------- rollup documents


@dataclass(frozen=True)
class Series:
    """One dimension id's rollups of one stored period (``dimension_id`` is "" for the
    app itself)."""

    app_id: str
    dimension: Dimension
    dimension_id: str
    stored: StoredPeriod

    def span_key(self, span: int) -> str:
        return derive_id(self.app_id, self.dimension, self.dimension_id, self.stored, str(span))

    def rollup_id(self, bucket: int) -> str:
        return derive_id(self.app_id, self.dimension, self.dimension_id, self.stored, str(bucket))


def ranking_key(app_id: str, dimension: Dimension, year: int) -> str:
    """The key of one dimension's day rollups in the year starting at ``year``: what
    ``top`` reads (every id of that dimension at once)."""
    return derive_id(app_id, dimension, "*", "day", str(year))


@dataclass(frozen=True)
class RollupDelta:
    """What one apply adds to one rollup document, and what that document is."""

    series: Series
    bucket: int
    counts: Counts
    label: str | None = None  # a channel's type

    @property
    def rollup_id(self) -> str:
        return self.series.rollup_id(self.bucket)

    @property
    def span_key(self) -> str:
        return self.series.span_key(span_start(self.bucket, self.series.stored))

    @property
    def ranking_key(self) -> str | None:
        if self.series.stored != "day" or self.series.dimension not in RANKED:
            return None
        return ranking_key(self.series.app_id, self.series.dimension, _year_start(self.bucket))


def _dimensions(fact: Fact) -> Iterator[tuple[Dimension, str, str | None]]:
    if fact.uid is not None:
        yield "user", fact.uid, None
    if fact.user_only:
        return
    yield "app", "", None
    if fact.campaign_id is not None:
        yield "campaign", fact.campaign_id, None
    if fact.template_id is not None:
        yield "template", fact.template_id, None
    if fact.channel_id is not None:
        yield "channel", fact.channel_id, fact.channel_type
    if fact.channel_type is not None:
        yield "channel_type", fact.channel_type, None


def rollup_deltas(facts: Iterable[Fact]) -> list[RollupDelta]:
    """The facts summed per rollup document (one delta per document)."""
    summed: dict[tuple[Series, int], Counts] = {}
    labels: dict[Series, str | None] = {}
    for fact in facts:
        for dimension, dimension_id, label in _dimensions(fact):
            for stored in ("hour", "day"):
                if stored == "hour" and dimension not in HOURLY:
                    continue
                series = Series(fact.app_id, dimension, dimension_id, stored)
                key = (series, bucket_start(fact.at, stored))
                summed[key] = summed.get(key, Counts()) + fact.counts
                labels[series] = label
    return [
        RollupDelta(series, bucket, counts, labels[series])
        for (series, bucket), counts in summed.items()
    ]


def batch_id(event_ids: Sequence[str]) -> str:
    """The id of one apply: derived from the events it counts."""
    return derive_id("analytics-batch", *sorted(event_ids))
