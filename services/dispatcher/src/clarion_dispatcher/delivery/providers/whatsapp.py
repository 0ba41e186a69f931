"""WhatsApp through Meta's WhatsApp Cloud API (a ``whatsapp`` channel).

``POST {baseUrl}/{apiVersion}/{phoneNumberId}/messages`` with ``Authorization: Bearer
{accessToken}`` and the JSON ``{"messaging_product": "whatsapp", "recipient_type":
"individual", "to": <contactNumber without +>, "type": "text" | "template", ...}``
(the content's kinds: :mod:`clarion_shared.channel_settings.whatsapp`), and
``biz_opaque_callback_data``: the job's derived id, which Meta hands back in its status
webhooks (the Cloud API takes no idempotency key).

Meta asks clients to decide by the error's ``code`` rather than the HTTP status (a
throttled call is a 400), so :func:`classify` does:

- 2xx → ``Sent``, ``messages[0].id`` (a ``wamid.…``) the provider id;
- the authentication, permission and account codes (0, 3, 10, 190, 200 to 299, 33, 368,
  131005, 131031, 131042, 131045, 133010), or a 401/403 → ``ERR_CHANNEL_CONFIG``;
- the throttling and transient codes (4, 80007, 130429, 131048, 131056: rate limits;
  2, 131000, 131016, 131057, 133004: Meta's side), or a 429/5xx → ``Retry``
  (``WHATSAPP_<code>``);
- any other → ``WHATSAPP_<code>`` (131026 undeliverable, 131047 outside the 24-hour
  window, 132001 no such template, 100 invalid parameter...).
"""

from __future__ import annotations

from pydantic import JsonValue, ValidationError

from clarion_shared.channel_settings.http_common import problem
from clarion_shared.channel_settings.whatsapp import WhatsAppContent, WhatsAppSettings
from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.config_channels import ChannelConfig

from .base import (
    ERR_CHANNEL_CONFIG,
    ERR_INVALID_CONTENT,
    ERR_PROVIDER_REJECTED,
    ERR_PROVIDER_UNAVAILABLE,
    ConfigError,
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

CONFIG_CODES = frozenset({0, 3, 10, 33, 190, 368, 131005, 131031, 131042, 131045, 133010})
RETRY_CODES = frozenset({2, 4, 80007, 130429, 131000, 131016, 131048, 131056, 131057, 133004})
OPAQUE_MAX = 512  # bytes of biz_opaque_callback_data


class WhatsAppClient(HttpProvider):
    def __init__(self, settings: WhatsAppSettings, *, allow_private: bool = False) -> None:
        check_endpoint(settings.base_url, allow_private, "baseUrl")
        super().__init__(
            new_client(
                settings,
                allow_private=allow_private,
                headers={"authorization": f"Bearer {settings.access_token}"},
            )
        )
        self._settings = settings

    async def send(self, outbound: Outbound) -> Outcome:
        to = contact_number(outbound.contact)
        if isinstance(to, Failed):
            return to
        try:
            content = WhatsAppContent.model_validate(outbound.content)
        except ValidationError as exc:
            return Failed(ERR_INVALID_CONTENT, problem(exc, "The whatsapp content"))
        message: dict[str, JsonValue] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to.removeprefix("+"),
            **content.message(),
        }
        if len(outbound.idempotency_key.encode()) <= OPAQUE_MAX:
            message["biz_opaque_callback_data"] = outbound.idempotency_key
        answer = await post(self._http, self._settings.messages_url, json=message)
        return classify(answer) if isinstance(answer, Answer) else answer


def build(config: ChannelConfig, *, allow_private: bool = False) -> WhatsAppClient:
    """The channel's client; ``ConfigError`` (in words) when its settings cannot work.
    ``allow_private``: ``CLARION_WEBHOOKS_ALLOW_PRIVATE`` (loopback and private hosts)."""
    try:
        settings = WhatsAppSettings.model_validate(config.metadata)
    except ValidationError as exc:
        raise ConfigError(problem(exc, f"whatsapp channel {config.channel_id}")) from None
    return WhatsAppClient(settings, allow_private=allow_private)


def _first(value: JsonValue, key: str) -> JsonValue:
    """``value[0][key]`` of a JSON list of objects, else None."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return value[0].get(key)
    return None


def _error(body: JsonObject) -> tuple[int | None, str]:
    """The Graph API error's ``code`` and its words (``message``, then ``details``)."""
    error = body.get("error")
    if not isinstance(error, dict):
        return None, ""
    code = error.get("code")
    number = code if isinstance(code, int) and not isinstance(code, bool) else None
    said = [error.get("message")]
    data = error.get("error_data")
    if isinstance(data, dict):
        said.append(data.get("details"))
    return number, " ".join(s for s in said if isinstance(s, str))[:300]


def classify(answer: Answer) -> Outcome:
    """What the Cloud API's answer to a send-message call comes to."""
    body = answer.json()
    if answer.ok:
        wamid = _first(body.get("messages"), "id")
        wa_id = _first(body.get("contacts"), "wa_id")
        return Sent(
            provider_id=wamid if isinstance(wamid, str) else None,
            detail={"waId": wa_id} if isinstance(wa_id, str) else {},
        )
    number, said = _error(body)
    what = f"WhatsApp answered {answer.status}" + (
        f" (error {number})" if number is not None else ""
    )
    words = f"{what}: {said or answer.excerpt()}".rstrip(": ")
    if number in CONFIG_CODES or (number is not None and 200 <= number <= 299):
        return Failed(ERR_CHANNEL_CONFIG, words)
    if number in RETRY_CODES or answer.transient:
        own = f"WHATSAPP_{number}" if number is not None else ERR_PROVIDER_UNAVAILABLE
        return Retry(own, words, answer.retry_after_s())
    if answer.status in (401, 403):
        return Failed(ERR_CHANNEL_CONFIG, words)
    return Failed(f"WHATSAPP_{number}" if number is not None else ERR_PROVIDER_REJECTED, words)
