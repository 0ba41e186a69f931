"""The in-app feed's answers (owned by the dispatcher, forwarded by the gateway)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict

from ..api import ApiModel
from ..contracts.base import JsonObject
from ..contracts.sends import ChannelType

FeedStatus = Literal["sent", "delivered", "read"]


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
    status: FeedStatus
    sent_at: int
    delivered_at: int | None
    read_at: int | None


class UnreadCountPublic(ApiModel):
    model_config = ConfigDict(frozen=True)

    count: int


FEED_STREAM_RESPONSE: dict[int | str, dict[str, object]] = {
    200: {
        "description": "Server-sent events: a `: connected` comment at once, then one "
        "`feed_item` event per new item (`id:` the item's id, `data:` the feed item's "
        "JSON), and a `: keep-alive` comment while idle.",
        "content": {
            "text/event-stream": {
                "schema": {"type": "string", "format": "event-stream"},
                "example": 'event: feed_item\nid: ntf_1\ndata: {"id": "ntf_1", ...}\n\n',
            }
        },
    }
}
"""The OpenAPI ``responses`` entry of a feed stream route."""
