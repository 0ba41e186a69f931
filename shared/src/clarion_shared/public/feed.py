"""The in-app feed's answers, its list's parameters and the engagement body (owned by
the dispatcher, forwarded by the gateway, which documents and checks them too)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Query
from pydantic import ConfigDict, Field

from ..api import ApiModel
from ..contracts.base import JsonObject
from ..contracts.sends import ChannelType
from ..cursor import (
    MAX_TIMESTAMP,
    ListParams,
    ListSorts,
    SentAtCursor,
    list_params,
)
from ..sse import stream_media

FeedStatus = Literal["sent", "delivered", "read"]
TOPIC_PATTERN = r"^[A-Za-z0-9_-]+$"
TOPIC_MAX = 64


class FeedItemPublic(ApiModel):
    model_config = ConfigDict(frozen=True)

    id: str
    notification_id: str
    batch_id: str | None
    campaign_id: str | None
    receiver: str
    channel_type: ChannelType
    channel_id: str
    template_id: str
    template_version: int
    content: JsonObject
    tag: str | None
    template_category: str | None = Field(
        default=None, description="The template's category when it was sent."
    )
    status: FeedStatus
    sent_at: int
    delivered_at: int | None
    read_at: int | None
    engaged_at: int | None = Field(default=None, description="The first engagement reported.")
    engagement_topics: list[str] = Field(
        default_factory=list, description="The topics engagements reported, each once, in order."
    )
    created_at: int = Field(description="When the item was written: its sentAt.")
    updated_at: int = Field(description="Its last change (sent, delivered, read, engaged).")


class EngagementReport(ApiModel):
    """CometChat's EngagementEventDto: what the user did with the item."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"topic": "clicked"}]})

    topic: str | None = Field(
        default=None,
        max_length=TOPIC_MAX,
        pattern=TOPIC_PATTERN,
        description='What the engagement was: "clicked", or any letters, digits, "_" and '
        '"-" (up to 64). Each topic is stored and published once per item; without one, '
        "only the item's first engagement is.",
    )


class UnreadCountPublic(ApiModel):
    model_config = ConfigDict(frozen=True)

    count: int


FEED_STREAM_RESPONSE: dict[int | str, dict[str, object]] = {
    200: {
        "description": "Server-sent events: a `: connected` comment at once, then one "
        "`feed_item` event per new item (`id:` the item's id, `data:` the feed item's "
        "JSON), and a `: keep-alive` comment while idle.",
        "content": {
            "text/event-stream": stream_media(
                ("feed_item",), 'event: feed_item\nid: ntf_1\ndata: {"id": "ntf_1", ...}\n\n'
            )
        },
    }
}
"""The OpenAPI ``responses`` entry of a feed stream route."""


# ---------------------------------------------------------------- the list's parameters

FEED_SORTS = ListSorts(
    # An item is created when it is sent: both sorts are one order, its cursor sentAt.
    fields={"sentAt": "sentAt", "createdAt": "sentAt"},
    page_default=("sentAt", "desc"),
    cursor_default=("sentAt", "desc"),
)
ReadStateFilter = Literal["read", "unread", "all"]
TagMatch = Literal["any", "all"]
_DATE = "Unix seconds, inclusive, on sentAt"


@dataclass(frozen=True)
class FeedQuery:
    """``GET .../notification-feed``'s filters (CometChat's names) and its paging."""

    paging: ListParams
    read_state: ReadStateFilter | None = None
    date_from: float | None = None
    date_to: float | None = None
    tags: str | None = None
    tag_match: TagMatch = "any"
    template_category: str | None = None
    channel_id: str | None = None
    receiver: str | None = None


def feed_query(  # long: one parameter per CometChat filter, each documented
    paging: Annotated[ListParams, Depends(list_params)],
    read_state: Annotated[ReadStateFilter | None, Query(alias="readState")] = None,
    date_from: Annotated[
        float | None,
        Query(alias="dateFrom", ge=0, le=MAX_TIMESTAMP, allow_inf_nan=False, description=_DATE),
    ] = None,
    date_to: Annotated[
        float | None,
        Query(alias="dateTo", ge=0, le=MAX_TIMESTAMP, allow_inf_nan=False, description=_DATE),
    ] = None,
    tags: Annotated[
        str | None,
        Query(
            max_length=2000,
            description="Comma-separated; an item has one tag: with tagMatch=all it "
            "matches only when every tag named is that one.",
        ),
    ] = None,
    tag_match: Annotated[TagMatch, Query(alias="tagMatch")] = "any",
    template_category: Annotated[
        str | None,
        Query(alias="templateCategory", max_length=200, description="The template's category."),
    ] = None,
    channel_id: Annotated[
        str | None, Query(alias="channelId", max_length=200, description="The in-app channel.")
    ] = None,
    receiver: Annotated[
        str | None,
        Query(
            max_length=100,
            description="The user whose feed an admin call reads (no onbehalfof); "
            "ignored when onbehalfof is given, as in CometChat.",
        ),
    ] = None,
    sort: Annotated[
        Literal["sentAt", "createdAt"] | None,
        Query(description="sentAt (the default) or createdAt: the same order on the feed."),
    ] = None,
    sent_at: SentAtCursor = None,
) -> FeedQuery:
    """The feed list's query, for ``Depends``; the paging mode is chosen (and refused)
    where the list is read."""
    return FeedQuery(
        paging=paging.sorted_by(sort, {"sentAt": sent_at}),
        read_state=read_state,
        date_from=date_from,
        date_to=date_to,
        tags=tags,
        tag_match=tag_match,
        template_category=template_category,
        channel_id=channel_id,
        receiver=receiver,
    )
