"""Settings of a ``custom`` channel (API.md Channels): an HTTP POST of the rendered
content to the channel's URL, signed as webhooks are.

``{url, headers?, rateLimitPerSecond?}`` as the client writes it (with
``timeoutSeconds`` and ``maxConnections``, :mod:`.http_common`), plus what the gateway
keeps beside them, stored as a webhook's are (``WebhookConfig``): ``signingSecret``
(``whsec_…``, generated on create and shown once), and during a rotation
``previousSigningSecret`` with ``previousSecretExpiresAt`` (Unix milliseconds), until
which every call is signed with both. A channel without a signing secret cannot send.

Each POST carries ``{notificationId, deliveryId, receiver, channelId, content,
variables}`` as JSON, the Standard Webhooks headers (``webhook-id``: the delivery id,
the same on every retry; ``webhook-timestamp``; ``webhook-signature``), and ``headers``.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from clarion_shared.webhook_signing import BadSecret, signature

from .http_common import HttpSettings
from .http_common import headers as checked_headers
from .http_common import http_url as checked_url

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def _secret(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        signature(value, "check", 0, b"")  # the signing rule's own check of the shape
    except BadSecret as exc:
        raise ValueError(str(exc)) from None
    return value


class CustomSettings(HttpSettings):
    url: str = Field(repr=False)  # may carry a key in its query
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    signing_secret: str | None = Field(default=None, repr=False)
    previous_signing_secret: str | None = Field(default=None, repr=False)
    previous_secret_expires_at: int | None = None  # Unix milliseconds

    check_url = field_validator("url")(checked_url)
    check_secrets = field_validator("signing_secret", "previous_signing_secret")(_secret)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        return checked_headers(value, reserved=SIGNATURE_HEADERS)

    def secrets(self, now_ms: int) -> list[str]:
        """The secrets a call at ``now_ms`` is signed with (two during a rotation);
        none when the channel has no secret yet."""
        if self.signing_secret is None:
            return []
        if (
            self.previous_signing_secret
            and self.previous_secret_expires_at is not None
            and now_ms < self.previous_secret_expires_at
        ):
            return [self.signing_secret, self.previous_signing_secret]
        return [self.signing_secret]
