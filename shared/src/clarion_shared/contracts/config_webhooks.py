"""Topic ``clarion.config.webhooks`` (compacted): the current webhook endpoints.

Key: ``app_id:webhook_id``. A tombstone deletes the endpoint. The record carries the
signing secret and Basic Auth password, so the topic must be access-controlled like
the database.
"""

from __future__ import annotations

from typing import Literal

from .base import Contract


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
    use_basic_auth: bool = False
    username: str | None = None
    password: str | None = None
    updated_at: int

    @property
    def key(self) -> str:
        return f"{self.app_id}:{self.webhook_id}"
