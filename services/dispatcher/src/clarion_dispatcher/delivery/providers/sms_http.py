"""SMS through any HTTP endpoint (an ``sms`` channel with ``provider: "http"``).

``POST {url}`` with the JSON ``{to, text, idempotencyKey}`` (``to``: the user's E.164
``contactNumber``; ``text``: the content's), the channel's ``headers`` (its credentials,
say) and ``Idempotency-Key``: the job's derived id, the same on every retry, so an
endpoint that honours it sends once.

The answer comes to (:func:`.http_common.classify_http`, shared with the custom
channel):
2xx → ``Sent``, the body's ``id`` (when it is a string or a number) the provider id;
408, 425, 429, 5xx → ``Retry`` (after ``Retry-After`` when given); 401, 403 →
``ERR_CHANNEL_CONFIG`` (the configured credentials are refused); any other →
``ERR_PROVIDER_REJECTED``, with the status and the start of the body in the message.
"""

from __future__ import annotations

from pydantic import ValidationError

from clarion_shared.channel_settings.sms import IDEMPOTENCY_HEADER, HttpSmsSettings, SmsContent

from .base import ERR_INVALID_CONTENT, Failed, Outbound, Outcome
from .http_common import (
    Answer,
    HttpProvider,
    check_endpoint,
    classify_http,
    contact_number,
    new_client,
    post,
)


class HttpSmsClient(HttpProvider):
    def __init__(self, settings: HttpSmsSettings, *, allow_private: bool = False) -> None:
        check_endpoint(settings.url, allow_private, "url")
        super().__init__(
            new_client(settings, allow_private=allow_private, headers=settings.headers)
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
        body = {"to": to, "text": content.text, "idempotencyKey": outbound.idempotency_key}
        answer = await post(
            self._http,
            self._settings.url,
            json=body,
            headers={IDEMPOTENCY_HEADER: outbound.idempotency_key},
        )
        return classify_http(answer, "The SMS endpoint") if isinstance(answer, Answer) else answer
