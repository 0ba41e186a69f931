"""What a user's devices reported about a push notification, as stored (snake_case); a
push notification as shown (the API's camelCase JSON) is
``clarion_shared.public.push_notifications``, which the gateway documents too."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clarion_shared.public.push_notifications import (
    PushEngagementReport,
    PushNotificationPublic,
    PushStatus,
)

from ..feed.models import Engagement

__all__ = [
    "Engagement",
    "PushEngagementReport",
    "PushEvent",
    "PushNotificationPublic",
    "PushState",
    "PushStatus",
]

PushEvent = Literal["delivered", "clicked"]


class PushState(BaseModel):
    """The reports on one push notification; same id as its notification record (and
    its delivery job). Made by the first report; each time is the first one's."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    app_id: str
    uid: str
    delivered_at: int | None = None
    clicked_at: int | None = None
    engaged_at: int | None = None
    engagements: list[Engagement] = Field(default_factory=list)
    updated_at: int | None = Field(default=None, description="The last report that changed it.")

    def engagement_of(self, topic: str | None) -> Engagement | None:
        return next((e for e in self.engagements if e.topic == topic), None)
