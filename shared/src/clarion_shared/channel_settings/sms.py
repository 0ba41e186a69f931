"""Settings of an ``sms`` channel (API.md Channels): Twilio's Messages API, or any HTTP
endpoint that takes a JSON message.

- ``{provider: "twilio", accountSid, authToken, from, baseUrl?, rateLimitPerSecond?}``:
  a form-encoded ``To``, ``From``, ``Body`` POSTed to
  ``{baseUrl}/2010-04-01/Accounts/{accountSid}/Messages.json`` with Basic Auth
  (``accountSid:authToken``). ``baseUrl`` defaults to ``https://api.twilio.com``;
  another lets a Twilio-compatible service (SignalWire's compatibility API, say) or a
  test server stand in, so ``accountSid`` is any path-safe id, not only ``AC…``.
  ``from`` is an E.164 number, a short code, an alphanumeric sender id (1 to 11 letters,
  digits or spaces), or a Messaging Service SID (``MG`` and 32 hex digits), which is
  sent as ``MessagingServiceSid`` instead of ``From``.
- ``{provider: "http", url, headers?, rateLimitPerSecond?}``: a JSON ``{to, text,
  idempotencyKey}`` POSTed to ``url`` with ``headers`` (e.g. ``Authorization``) and an
  ``Idempotency-Key`` header.

Both take ``timeoutSeconds`` and ``maxConnections`` (:mod:`.http_common`). The content
of an ``sms`` template is ``{text}`` (API.md Templates).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from clarion_shared.e164 import E164

from .http_common import HttpSettings
from .http_common import base_url as checked_base_url
from .http_common import headers as checked_headers
from .http_common import http_url as checked_url

TWILIO_BASE_URL = "https://api.twilio.com"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_MESSAGING_SERVICE = re.compile(r"^MG[0-9a-fA-F]{32}$")
_SENDER_ID = re.compile(r"^[A-Za-z0-9 ]{1,11}$")  # alphanumeric sender ids, short codes


class TwilioSettings(HttpSettings):
    provider: Literal["twilio"]
    account_sid: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    auth_token: str = Field(min_length=1, max_length=256, repr=False)
    from_: str = Field(alias="from")
    base_url: str = TWILIO_BASE_URL

    check_base_url = field_validator("base_url")(checked_base_url)

    @field_validator("from_")
    @classmethod
    def _sender(cls, value: str) -> str:
        if (
            E164.fullmatch(value)
            or _SENDER_ID.fullmatch(value)
            or _MESSAGING_SERVICE.fullmatch(value)
        ):
            return value
        raise ValueError(
            "must be an E.164 number (+15551234567), a short code, an alphanumeric "
            "sender id or a Messaging Service SID (MG…)"
        )

    @property
    def uses_messaging_service(self) -> bool:
        return _MESSAGING_SERVICE.fullmatch(self.from_) is not None

    @property
    def messages_url(self) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"


class HttpSmsSettings(HttpSettings):
    provider: Literal["http"]
    url: str = Field(repr=False)  # may carry a key in its query
    headers: dict[str, str] = Field(default_factory=dict, repr=False)

    check_url = field_validator("url")(checked_url)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        return checked_headers(value, reserved=(IDEMPOTENCY_HEADER,))


SmsSettings = Annotated[TwilioSettings | HttpSmsSettings, Field(discriminator="provider")]
SMS_SETTINGS: TypeAdapter[TwilioSettings | HttpSmsSettings] = TypeAdapter(SmsSettings)


class SmsContent(BaseModel):
    """The rendered content of an ``sms`` template."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    text: str = Field(min_length=1)
