"""SMS through Twilio's Messages API (or a Twilio-compatible one at ``baseUrl``).

``POST {baseUrl}/2010-04-01/Accounts/{accountSid}/Messages.json``, form-encoded ``To``
(the user's E.164 ``contactNumber``), ``From`` (or ``MessagingServiceSid``) and
``Body`` (the content's ``text``), with HTTP Basic Auth ``accountSid:authToken``.

What Twilio answers comes to (:func:`classify`):

- 2xx (201 with the Message resource) → ``Sent``, its ``sid`` the provider id;
- 429, 5xx, and the transient error codes (20429 too many requests, 21611 the sender's
  queue is full) → ``Retry``, after ``Retry-After`` when given;
- 401, 403, 404 (wrong credentials or account) and the errors of the sender itself
  (21212, 21606, 21659, 21660: ``from`` unusable for this account) →
  ``ERR_CHANNEL_CONFIG``: every message of the channel would fail alike;
- any other error → ``TWILIO_<code>`` (21211 invalid ``To``, 21610 the user replied
  STOP, 21614 not a mobile number...), ``ERR_PROVIDER_REJECTED`` without a code.

Twilio's Messages API takes no idempotency key (``I-Twilio-Idempotency-Token`` is a
header of Twilio's own webhooks, not a request option): a job is kept from being sent
twice by the worker's delivery record, not here.
"""

from __future__ import annotations

import httpx
from pydantic import ValidationError

from clarion_shared.channel_settings.sms import SmsContent, TwilioSettings

from .base import (
    ERR_CHANNEL_CONFIG,
    ERR_INVALID_CONTENT,
    ERR_PROVIDER_REJECTED,
    ERR_PROVIDER_UNAVAILABLE,
    Failed,
    Outbound,
    Outcome,
    Retry,
    Sent,
)
from .http_common import (
    Answer,
    HttpProvider,
    check_endpoint,
    contact_number,
    new_client,
    post,
)

CONFIG_STATUSES = frozenset({401, 403, 404})
CONFIG_CODES = frozenset({20003, 21212, 21606, 21659, 21660})
RETRY_CODES = frozenset({20429, 21611})


class TwilioClient(HttpProvider):
    def __init__(self, settings: TwilioSettings, *, allow_private: bool = False) -> None:
        check_endpoint(settings.base_url, allow_private, "baseUrl")
        super().__init__(
            new_client(
                settings,
                allow_private=allow_private,
                auth=httpx.BasicAuth(settings.account_sid, settings.auth_token),
            )
        )
        self._settings = settings

    async def send(self, outbound: Outbound) -> Outcome:
        to = contact_number(outbound.contact)
        if isinstance(to, Failed):
            return to
        try:
            content = SmsContent.model_validate(outbound.content)
        except ValidationError:
            return Failed(ERR_INVALID_CONTENT, "An sms content needs a text.")
        sender = "MessagingServiceSid" if self._settings.uses_messaging_service else "From"
        form = {"To": to, sender: self._settings.from_, "Body": content.text}
        answer = await post(self._http, self._settings.messages_url, data=form)
        return classify(answer) if isinstance(answer, Answer) else answer


def classify(answer: Answer) -> Outcome:
    """What Twilio's answer to a create-message call comes to."""
    body = answer.json()
    if answer.ok:
        sid = body.get("sid")
        status = body.get("status")
        return Sent(
            provider_id=sid if isinstance(sid, str) else None,
            detail={"status": status} if isinstance(status, str) else {},
        )
    code = body.get("code")
    number = code if isinstance(code, int) and not isinstance(code, bool) else None
    message = body.get("message")
    said = message[:300] if isinstance(message, str) else answer.excerpt()
    what = f"Twilio answered {answer.status}" + (f" (error {number})" if number else "")
    words = f"{what}: {said}" if said else what
    if number in RETRY_CODES or answer.transient:
        own = f"TWILIO_{number}" if number else ERR_PROVIDER_UNAVAILABLE
        return Retry(own, words, answer.retry_after_s())
    if answer.status in CONFIG_STATUSES or number in CONFIG_CODES:
        return Failed(ERR_CHANNEL_CONFIG, words)
    return Failed(f"TWILIO_{number}" if number else ERR_PROVIDER_REJECTED, words)
