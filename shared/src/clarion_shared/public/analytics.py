"""Analytics: the answer of every ``GET /v3/campaigns/analytics/...`` operation and its
query parameters (owned by the dispatcher, which keeps the rollups; forwarded by the
gateway, which documents and checks the parameters too).

The parameters are CometChat's (``dimension``, ``dimensionId``, ``period``,
``startDate``, ``endDate``, ``limit``) with both vocabularies accepted: ``period`` as
API.md names it (``hour``, ``day``, ``week``, ``month``) or as CometChat does
(``hourly``, ``daily``, ...), and dates as Unix seconds or ISO 8601. Their meaning,
and the 400s, are the dispatcher's (``clarion_dispatcher.analytics.query``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Query
from pydantic import ConfigDict, Field

from ..api import ApiModel
from ..contracts.sends import ChannelType

Period = Literal["hour", "day", "week", "month"]
PeriodParam = Literal["hour", "day", "week", "month", "hourly", "daily", "weekly", "monthly"]
DimensionParam = Literal["campaign", "template", "channel"]

DEFAULT_TOP_LIMIT = 50
"""CometChat's default ``limit``: how many entries ``top`` holds at most."""
MAX_TOP_LIMIT = 100

_DATE = (
    "Unix seconds or ISO 8601 (a date alone is its midnight UTC). Every bucket the range "
    "touches is counted whole."
)


def _is_none(value: object) -> bool:
    return value is None


class AnalyticsCounts(ApiModel):
    """Deliveries (receiver x channel) counted from the status events: ``sent`` (in-app
    feed items written; other channels' deliveries accepted), ``delivered`` and ``read``
    (feed items marked so), ``engaged`` (feed items' first engagement), ``failed``."""

    model_config = ConfigDict(frozen=True)

    sent: int = 0
    delivered: int = 0
    read: int = 0
    engaged: int = 0
    failed: int = 0


class AnalyticsRates(ApiModel):
    """Each a share of ``sent`` (0 when nothing was sent), rounded to 4 decimals."""

    model_config = ConfigDict(frozen=True)

    delivery: float
    read: float
    engagement: float


class AnalyticsBucket(AnalyticsCounts):
    """One bucket of the series: ``bucket`` is its start (Unix seconds, UTC; weeks start
    on Monday, ISO 8601)."""

    bucket: int


class AnalyticsTopEntry(AnalyticsCounts):
    """One campaign, template or channel of the range, ranked by ``sent``."""

    dimension: DimensionParam
    id: str
    channel_type: ChannelType | None = Field(default=None, exclude_if=_is_none)


class AnalyticsPublic(ApiModel):
    """``{totals, rates, series, top?}`` over ``[startDate, endDate]`` by ``period``:
    ``series`` holds every bucket of the range, zeros included. ``top`` (overview and
    channels) ranks the ids of a dimension by ``sent`` over the whole days of the range."""

    model_config = ConfigDict(frozen=True)

    period: Period
    start_date: int = Field(description="The first bucket's start (Unix seconds).")
    end_date: int = Field(description="The end of the last bucket (Unix seconds, excluded).")
    totals: AnalyticsCounts
    rates: AnalyticsRates
    series: list[AnalyticsBucket]
    top: list[AnalyticsTopEntry] | None = Field(default=None, exclude_if=_is_none)


@dataclass(frozen=True)
class AnalyticsQuery:
    """The parameters as given (dates unparsed: the dispatcher reads both forms)."""

    dimension: DimensionParam | None = None
    dimension_id: str | None = None
    period: PeriodParam | None = None
    start_date: str | None = None
    end_date: str | None = None
    limit: int = DEFAULT_TOP_LIMIT


def analytics_query(
    dimension: Annotated[
        DimensionParam | None,
        Query(description="On the overview: the dimension `dimensionId` names, and `top` ranks."),
    ] = None,
    dimension_id: Annotated[
        str | None,
        Query(
            alias="dimensionId",
            max_length=200,
            description="A campaign id, template id, or channel (a channel type such as "
            "`push`, or a channel id).",
        ),
    ] = None,
    period: Annotated[PeriodParam | None, Query(description="Bucket size; `day` by default.")] = (
        None
    ),
    start_date: Annotated[
        str | None, Query(alias="startDate", max_length=40, description=_DATE)
    ] = None,
    end_date: Annotated[
        str | None, Query(alias="endDate", max_length=40, description=_DATE + " Now by default.")
    ] = None,
    limit: Annotated[
        int,
        Query(ge=1, le=MAX_TOP_LIMIT, description="How many entries `top` holds at most."),
    ] = DEFAULT_TOP_LIMIT,
) -> AnalyticsQuery:
    return AnalyticsQuery(dimension, dimension_id, period, start_date, end_date, limit)
