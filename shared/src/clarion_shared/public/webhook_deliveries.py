"""A webhook endpoint's deliveries (owned by the webhook-emitter, forwarded by the
gateway under ``/v3/webhooks/{id}/deliveries``).

A delivery is one webhook event sent to one endpoint; its ``id`` is the event's
``webhook-id`` header, the same on every attempt, so a receiver's log and this list
name the same thing. Every attempt is kept: when, the status code or the error, how
long it took and the start of the answer.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from ..api import ApiModel
from ..contracts.base import JsonObject

DeliveryStatus = Literal["pending", "succeeded", "failed"]
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = ("pending", "succeeded", "failed")


class AttemptPublic(ApiModel):
    model_config = ConfigDict(frozen=True)

    at: int = Field(description="Unix seconds the attempt started")
    status_code: int | None = Field(description="the endpoint's HTTP status; null: none")
    error: str | None = Field(description="timeout, connection error, refused address, ...")
    duration_ms: int
    response: str | None = Field(description="the start of the answer's body (capped)")
    trigger: Literal["schedule", "manual", "replay"] = "schedule"


class DeliveryPublic(ApiModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(description="the webhook-id header of every attempt")
    webhook_id: str
    trigger: str = Field(description="the webhook trigger (after_feed_item_sent, ...)")
    status: DeliveryStatus
    attempts: list[AttemptPublic]
    next_attempt_at: int | None = Field(description="Unix seconds; null unless pending")
    payload: JsonObject = Field(description="the body sent: {trigger, data, appId, webhook}")
    created_at: int
    updated_at: int


class ReplayRequest(ApiModel):
    """Resend what failed to this endpoint between ``since`` and ``until`` (Unix
    seconds of the events; ``until`` defaults to now)."""

    since: int = Field(ge=0)
    until: int | None = Field(default=None, ge=0)


class ReplayAccepted(ApiModel):
    model_config = ConfigDict(frozen=True)

    webhook_id: str
    since: int
    until: int
    count: int = Field(description="failed deliveries scheduled again")


class EndpointStatePublic(ApiModel):
    """What the emitter knows of an endpoint (internal: tests and readiness of a
    configuration change)."""

    model_config = ConfigDict(frozen=True)

    webhook_id: str
    enabled: bool
    updated_at: int
    failing_since: int | None
