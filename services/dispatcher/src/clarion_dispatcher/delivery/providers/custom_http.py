"""A ``custom`` channel: the rendered content POSTed to the channel's URL, signed as
webhooks are (API.md Channels; :mod:`clarion_shared.channel_settings.custom`).

The body is ``{notificationId, deliveryId, receiver, channelId, content, variables}``
(``notificationId``: the send's id; ``deliveryId``: the job's derived id; ``receiver``:
the uid). Headers: the channel's ``headers``, then the Standard Webhooks ones made by
:mod:`clarion_shared.webhook_signing`: ``webhook-id`` is the delivery id (the same on
every retry, so a receiver can drop a repeat), ``webhook-timestamp`` this attempt's
time, ``webhook-signature`` one ``v1,`` signature per secret (two during a rotation).

The answer comes to what :func:`.http_common.classify_http` says: 2xx → ``Sent``; 408,
425, 429, 5xx → ``Retry`` (``Retry-After`` honoured); 401, 403 → ``ERR_CHANNEL_CONFIG``;
any other (410 Gone among them) → ``ERR_PROVIDER_REJECTED``, never retried.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from pydantic import ValidationError

from clarion_shared.channel_settings.custom import CustomSettings
from clarion_shared.channel_settings.http_common import problem
from clarion_shared.contracts.config_channels import ChannelConfig
from clarion_shared.webhook_signing import signed_headers

from .base import ConfigError, Outbound, Outcome
from .http_common import Answer, HttpProvider, check_endpoint, classify_http, new_client, post


def body_of(outbound: Outbound) -> bytes:
    """The JSON posted (and signed) for one delivery."""
    payload = {
        "notificationId": outbound.send_id,
        "deliveryId": outbound.idempotency_key,
        "receiver": outbound.uid,
        "channelId": outbound.channel_id,
        "content": outbound.content,
        "variables": outbound.variables,
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class CustomClient(HttpProvider):
    def __init__(
        self,
        settings: CustomSettings,
        *,
        allow_private: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if settings.signing_secret is None:
            raise ConfigError("a custom channel needs its signingSecret (the gateway makes one)")
        check_endpoint(settings.url, allow_private, "url")
        super().__init__(
            new_client(settings, allow_private=allow_private, headers=settings.headers)
        )
        self._settings = settings
        self._clock = clock

    async def send(self, outbound: Outbound) -> Outcome:
        body = body_of(outbound)
        now = self._clock()
        headers = {
            "content-type": "application/json",
            **signed_headers(
                self._settings.secrets(int(now * 1000)), outbound.idempotency_key, int(now), body
            ),
        }
        answer = await post(self._http, self._settings.url, content=body, headers=headers)
        if isinstance(answer, Answer):
            return classify_http(answer, "The channel's endpoint")
        return answer


def build(config: ChannelConfig, *, allow_private: bool = False) -> CustomClient:
    """The channel's client; ``ConfigError`` (in words) when its settings cannot work.
    ``allow_private``: ``CLARION_WEBHOOKS_ALLOW_PRIVATE`` (loopback and private hosts)."""
    try:
        settings = CustomSettings.model_validate(config.metadata)
    except ValidationError as exc:
        raise ConfigError(problem(exc, f"custom channel {config.channel_id}")) from None
    return CustomClient(settings, allow_private=allow_private)
