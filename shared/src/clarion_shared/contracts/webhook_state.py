"""Topic ``clarion.webhooks.state``: endpoint state changes the webhook-emitter decides.

Key: ``app_id:webhook_id``. The emitter disables an endpoint that answered 410 or kept
failing for ``CLARION_WEBHOOKS_DISABLE_AFTER_S``; the gateway, which owns endpoint
configuration, applies the change (so ``GET /v3/webhooks/{id}`` shows it) and publishes
the new configuration. A change made for an older configuration than the gateway's
(``config_updated_at`` below the stored ``updated_at``: the operator edited the endpoint
since) is ignored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Contract

DisableReason = Literal["gone", "failing"]


class WebhookDisabled(Contract):
    type: Literal["webhook_disabled"] = "webhook_disabled"
    v: Literal[1] = 1
    event_id: str = Field(description="derived from the endpoint, its config and the cause")
    app_id: str
    webhook_id: str
    reason: DisableReason = Field(description="gone: it answered 410; failing: for too long")
    detail: str
    disabled_at: int = Field(description="Unix seconds")
    config_updated_at: int = Field(description="updated_at of the configuration disabled")

    @property
    def key(self) -> str:
        return f"{self.app_id}:{self.webhook_id}"
