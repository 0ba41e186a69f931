"""Pure rules of reading: what an analytics request asks (its range, buckets and
series, or a 400), and the answer built from the rollups read.

Every bucket the range touches is counted whole: ``startDate`` 10:30 with
``period=hour`` starts at 10:00. Week and month buckets are sums of day rollups.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from clarion_shared.contracts.sends import CHANNEL_TYPES
from clarion_shared.cursor import MAX_TIMESTAMP
from clarion_shared.errors import Invalid
from clarion_shared.public.analytics import (
    AnalyticsBucket,
    AnalyticsCounts,
    AnalyticsPublic,
    AnalyticsQuery,
    AnalyticsRates,
    AnalyticsTopEntry,
    DimensionParam,
    Period,
)

from .domain import (
    DAY,
    METRICS,
    Counts,
    Dimension,
    Series,
    StoredPeriod,
    bucket_count,
    bucket_start,
    buckets,
    next_bucket,
)

MAX_BUCKETS = 1_000
"""More buckets than this in one answer is a 400: a series that size is no chart."""
_DEFAULT_SPAN: dict[Period, int] = {"hour": 24, "day": 30, "week": 12, "month": 12}
"""The buckets a range without ``startDate`` holds, ending with ``endDate``'s."""
_PERIODS: dict[str, Period] = {
    "hourly": "hour",
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
}
_UNIX = re.compile(r"^\d{1,12}$")

Scope = Literal["overview", "campaign", "template", "channels", "user"]


def _field_error(field: str, message: str) -> Invalid:
    return Invalid(f"{field} {message}.", details=[{"field": field, "message": message}])


def parse_date(value: str, field: str) -> int:
    """Unix seconds, or ISO 8601 (no zone: UTC; a date alone: its midnight)."""
    text = value.strip()
    if _UNIX.match(text):
        seconds = int(text)
    else:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise _field_error(field, "must be Unix seconds or an ISO 8601 date") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        seconds = int(parsed.timestamp())
    if not 0 <= seconds <= MAX_TIMESTAMP:
        raise _field_error(field, "is out of range")
    return seconds


@dataclass(frozen=True)
class Window:
    """The buckets an answer holds: from ``first`` to ``last`` (bucket starts)."""

    period: Period
    first: int
    last: int

    @property
    def stored(self) -> StoredPeriod:
        """The rollups it is summed from."""
        return "hour" if self.period == "hour" else "day"

    @property
    def end(self) -> int:
        """The end of the last bucket (excluded)."""
        return next_bucket(self.last, self.period)

    def stored_range(self) -> tuple[int, int]:
        """The first and last stored bucket inside the window."""
        step = 3_600 if self.stored == "hour" else DAY
        return self.first, self.end - step

    def day_range(self) -> tuple[int, int]:
        """The days the window touches (what ``top`` counts)."""
        return bucket_start(self.first, "day"), bucket_start(self.end - 1, "day")


def window(query: AnalyticsQuery, now: int) -> Window:
    """The window a request asks: ``period`` (``day`` by default; CometChat's
    ``hourly``... too) over ``[startDate, endDate]`` (``endDate`` now by default,
    ``startDate`` a default span before it). 400 when ``startDate`` is after ``endDate``
    or the window holds more than ``MAX_BUCKETS`` buckets."""
    period = _PERIODS.get(query.period or "day", query.period or "day")
    assert period in _DEFAULT_SPAN
    end = parse_date(query.end_date, "endDate") if query.end_date is not None else now
    last = bucket_start(end, period)
    if query.start_date is not None:
        start = parse_date(query.start_date, "startDate")
        if start > end:
            raise _field_error("startDate", "must not be after endDate")
        first = bucket_start(start, period)
    else:
        first = last
        for _ in range(_DEFAULT_SPAN[period] - 1):
            first = bucket_start(max(first - 1, 0), period)
    if bucket_count(first, last, period) > MAX_BUCKETS:
        raise Invalid(
            f"The range holds more than {MAX_BUCKETS} {period} buckets.",
            details=[{"field": "startDate", "message": f"at most {MAX_BUCKETS} buckets"}],
        )
    return Window(period, first, last)


@dataclass(frozen=True)
class Selection:
    """Which series an answer shows, and which dimension its ``top`` ranks (None: no
    ``top``)."""

    dimension: Dimension
    dimension_id: str
    top: DimensionParam | None = None


def channel_dimension(dimension_id: str) -> tuple[Dimension, str]:
    """CometChat names a channel by its type (``push``); Clarion's channels also have ids.
    A channel type's name reads as the type."""
    if dimension_id in CHANNEL_TYPES:
        return "channel_type", dimension_id
    return "channel", dimension_id


def _named(dimension: DimensionParam, dimension_id: str) -> tuple[Dimension, str]:
    if dimension == "channel":
        return channel_dimension(dimension_id)
    return dimension, dimension_id


def selection(scope: Scope, query: AnalyticsQuery, resource_id: str = "") -> Selection:
    """The overview shows the app, or the id ``dimension`` and ``dimensionId`` name, and
    ranks ``dimension``'s ids (templates by default); channels show all channels or the
    one ``dimensionId`` names, and rank the channels. A campaign, template or user is
    the path's: ``dimension`` and ``dimensionId`` do not apply to it."""
    if scope == "overview":
        top: DimensionParam = query.dimension or "template"
        if query.dimension is not None and query.dimension_id:
            return Selection(*_named(query.dimension, query.dimension_id), top=top)
        return Selection("app", "", top=top)
    if scope == "channels":
        if query.dimension_id and query.dimension in (None, "channel"):
            return Selection(*channel_dimension(query.dimension_id), top="channel")
        return Selection("app", "", top="channel")
    if scope == "user":
        if query.period in ("hour", "hourly"):
            raise _field_error("period", "is day, week or month for a user (kept daily)")
        return Selection("user", resource_id)
    return Selection(scope, resource_id)


def series_of(app_id: str, chosen: Selection, frame: Window) -> Series:
    return Series(app_id, chosen.dimension, chosen.dimension_id, frame.stored)


# ---------------------------------------------------------------- the answer


@dataclass(frozen=True)
class Row:
    """One stored rollup as read: its dimension id, bucket and counts."""

    dimension_id: str
    bucket: int
    counts: Counts
    label: str | None = None


def rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _public(counts: Counts) -> AnalyticsCounts:
    return AnalyticsCounts(**counts.model_dump())


def ranked(dimension: DimensionParam, rows: Iterable[Row], limit: int) -> list[AnalyticsTopEntry]:
    """The ids with the most ``sent`` (then the most of each other count, then by id)."""
    summed: dict[str, Counts] = {}
    labels: dict[str, str | None] = {}
    for row in rows:
        summed[row.dimension_id] = summed.get(row.dimension_id, Counts()) + row.counts
        labels[row.dimension_id] = labels.get(row.dimension_id) or row.label
    order = sorted(summed.items(), key=lambda kv: (*(-getattr(kv[1], m) for m in METRICS), kv[0]))
    return [
        AnalyticsTopEntry(
            dimension=dimension,
            id=key,
            channel_type=labels[key] if dimension == "channel" else None,
            **counts.model_dump(),
        )
        for key, counts in order[:limit]
    ]


def answer(
    frame: Window, rows: Iterable[Row], top: list[AnalyticsTopEntry] | None = None
) -> AnalyticsPublic:
    """Every bucket of ``frame`` (zeros included), their totals and rates."""
    summed = {bucket: Counts() for bucket in buckets(frame.first, frame.last, frame.period)}
    for row in rows:
        bucket = bucket_start(row.bucket, frame.period)
        if bucket in summed:
            summed[bucket] = summed[bucket] + row.counts
    totals = Counts()
    for counts in summed.values():
        totals = totals + counts
    return AnalyticsPublic(
        period=frame.period,
        start_date=frame.first,
        end_date=frame.end,
        totals=_public(totals),
        rates=AnalyticsRates(
            delivery=rate(totals.delivered, totals.sent),
            read=rate(totals.read, totals.sent),
            engagement=rate(totals.engaged, totals.sent),
        ),
        series=[
            AnalyticsBucket(bucket=bucket, **counts.model_dump())
            for bucket, counts in summed.items()
        ],
        top=top,
    )
