"""A user's push notifications (CometChat's ``/push-notifications`` operations): the
answer, the list's ``limit`` and the engagement body. Owned by the dispatcher, forwarded
by the gateway, which documents and checks them too."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query
from pydantic import ConfigDict, Field

from ..api import DEFAULT_PER_PAGE, MAX_PER_PAGE, ApiModel
from ..contracts.base import JsonObject
from ..contracts.sends import ChannelType
from .feed import TOPIC_MAX, TOPIC_PATTERN, EngagementReport

PushStatus = Literal["queued", "sent", "failed", "delivered", "clicked"]


def _is_none(value: object) -> bool:
    return value is None


class PushNotificationPublic(ApiModel):
    """One push notification: one receiver's delivery of one send on the push channel."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="The push notification's own id (one receiver, one send).")
    notification_id: str = Field(
        description="The send's id: the realtime notificationId, or the batch or campaign."
    )
    batch_id: str | None
    campaign_id: str | None
    receiver: str
    channel_type: ChannelType
    channel_id: str
    template_id: str
    template_version: int
    content: JsonObject | None = Field(description="The rendered content (None: never rendered).")
    tag: str | None
    status: PushStatus = Field(
        description="queued (waiting for the provider), sent (the provider took it), failed "
        "(for good: see code and message), then delivered and clicked as the device reports."
    )
    code: str | None = Field(default=None, exclude_if=_is_none)
    message: str | None = Field(default=None, exclude_if=_is_none)
    sent_at: int | None = Field(description="When the provider took it.")
    delivered_at: int | None = Field(description="The first delivery the device reported.")
    clicked_at: int | None = Field(description="The first click the device reported.")
    engaged_at: int | None = Field(description="The first engagement reported.")
    engagement_topics: list[str] = Field(
        default_factory=list, description="The topics engagements reported, each once, in order."
    )
    created_at: int = Field(description="When the send made it.")
    updated_at: int = Field(description="Its last change (sent or failed, delivered, clicked…).")


class PushEngagementReport(EngagementReport):
    """CometChat's PushEngagementEventDto: the feed's body (``topic?``), kept once per
    topic per push notification; without one, only its first engagement is."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"topic": "dismissed"}]})

    topic: str | None = Field(
        default=None,
        max_length=TOPIC_MAX,
        pattern=TOPIC_PATTERN,
        description='What the engagement was: "dismissed", or any letters, digits, "_" and '
        '"-" (up to 64).',
    )


PushLimit = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_PER_PAGE,
        description=f"How many, newest first (1-{MAX_PER_PAGE}, default {DEFAULT_PER_PAGE}).",
    ),
]
"""``GET .../push-notifications``'s ``limit`` (CometChat marks it required; a client
without it gets the default)."""
