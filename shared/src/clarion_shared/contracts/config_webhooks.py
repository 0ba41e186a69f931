"""Topic ``clarion.config.webhooks`` (compacted): the current webhook endpoints.

Key: ``app_id:webhook_id``. A tombstone deletes the endpoint. The record carries the
signing secrets and Basic Auth password, so the topic must be access-controlled like
the database.

``TRIGGERS`` is API.md's list: the gateway accepts only these, the emitter fires them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Contract

TRIGGERS = (
    "after_notification_created",
    "after_feed_item_sent",
    "after_feed_item_delivered",
    "after_feed_item_read",
    "after_feed_item_engaged",
    "after_push_notification_sent",
    "after_delivery_failed",
    "after_batch_completed",
    "after_campaign_completed",
    "after_campaign_failed",
    "after_webhook_disabled",
)


class WebhookConfig(Contract):
    type: Literal["webhook_config"] = "webhook_config"
    v: Literal[1] = 1
    app_id: str
    webhook_id: str
    name: str
    url: str
    triggers: list[str]
    enabled: bool
    signing_secret: str
    previous_signing_secret: str | None = Field(
        default=None,
        description="the secret before a rotation: deliveries are signed with both "
        "until previous_secret_expires_at, so receivers can switch without a gap",
    )
    previous_secret_expires_at: int | None = None
    use_basic_auth: bool = False
    username: str | None = None
    password: str | None = None
    disabled_reason: str | None = Field(
        default=None, description="why the emitter disabled the endpoint, when it did"
    )
    updated_at: int = Field(description="Unix milliseconds of the change; newer wins")

    @property
    def key(self) -> str:
        return f"{self.app_id}:{self.webhook_id}"

    def secrets(self, now_ms: int) -> list[str]:
        """The secrets a delivery at ``now_ms`` is signed with (two during a rotation)."""
        if (
            self.previous_signing_secret
            and self.previous_secret_expires_at is not None
            and now_ms < self.previous_secret_expires_at
        ):
            return [self.signing_secret, self.previous_signing_secret]
        return [self.signing_secret]
