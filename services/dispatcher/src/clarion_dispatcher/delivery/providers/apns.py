"""Apple Push Notification service, token-based, over HTTP/2, as Apple documents it.

Each token is one ``POST {baseUrl}/3/device/{token}`` (HTTP/2 only; default hosts
api.push.apple.com, or api.sandbox.push.apple.com when ``production`` is false) with
``authorization: bearer <JWT>`` (ES256 with the .p8 key, header ``kid`` = Key ID,
claims ``iss`` = Team ID and ``iat``), ``apns-topic`` (the bundle id),
``apns-push-type: alert``, ``apns-id`` (a UUID derived from the delivery and the
token, so that a job sent twice is recognisable), ``apns-expiration`` and
``apns-priority: 10``; body ``{"aps": {"alert": {title, body}}, …data}``.

The JWT is reused and replaced every 50 minutes: Apple refuses one older than an hour
and answers ``TooManyProviderTokenUpdates`` to a sender that renews more often than
every 20 minutes. Answers: 200 (with ``apns-id``) is sent; 400 ``BadDeviceToken`` and
410 ``Unregistered`` mean the token is dead; 429 and 5xx are transient; a 403
``InvalidProviderToken``/``ExpiredProviderToken`` renews the JWT and tries once more,
then means the key does not work (``ERR_CHANNEL_CONFIG``).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from clarion_shared.channel_settings.push import ApnsSettings
from clarion_shared.outbound_http import retry_after

from .base import ERR_CHANNEL_CONFIG, ERR_PROVIDER_REJECTED, ConfigError
from .push_rules import (
    PushMessage,
    PushToken,
    TokenResult,
    failed,
    invalid,
    retry,
    sent,
    transport_result,
)

JWT_REFRESH_S = 50 * 60
DEVICE_TOKEN = re.compile(r"[0-9A-Fa-f]{16,400}")  # hexadecimal, as the device gives it
# apns-id: a UUID from the delivery's key and the token (uuid5 in this namespace).
APNS_ID_NAMESPACE = uuid.UUID("5d0b1a49-4c0f-4a53-9b61-3f1f6c2f9e27")
PROVIDER_TOKEN_REASONS = frozenset({"InvalidProviderToken", "ExpiredProviderToken"})
DEAD_TOKEN_REASONS = frozenset({"BadDeviceToken", "Unregistered", "ExpiredToken"})
CONFIG_REASONS = frozenset({"BadTopic", "MissingTopic", "TopicDisallowed"})

Clock = Callable[[], float]


def signing_key(settings: ApnsSettings) -> EllipticCurvePrivateKey:
    """The .p8 key (EC P-256), or a ConfigError saying what is wrong with it."""
    try:
        key = load_pem_private_key(settings.private_key.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError("apns.privateKey is not a readable PEM private key") from None
    if not isinstance(key, EllipticCurvePrivateKey) or not isinstance(key.curve, SECP256R1):
        raise ConfigError("apns.privateKey is not an EC P-256 key (an APNs .p8 auth key)")
    return key


def apns_id(key: str, token: str) -> str:
    return str(uuid.uuid5(APNS_ID_NAMESPACE, f"{key}:{token}"))


def payload(message: PushMessage) -> bytes:
    """The notification's JSON: ``aps`` with the alert, then the data as custom keys."""
    custom = {key: value for key, value in message.data.items() if key != "aps"}
    aps = {"alert": {"title": message.title, "body": message.body}}
    return json.dumps({"aps": aps, **custom}, separators=(",", ":")).encode()


class ApnsClient:
    """One channel's APNs sender: its HTTP/2-only connection pool (``http``: requests
    multiplex on a connection; closed with the client) and one provider JWT; safe for
    many tasks at once."""

    def __init__(
        self,
        settings: ApnsSettings,
        key: EllipticCurvePrivateKey,
        http: httpx.AsyncClient,
        *,
        clock: Clock = time.time,
    ) -> None:
        self._settings = settings
        self._key = key
        self._http = http
        self._clock = clock
        self._jwt: tuple[str, float] | None = None  # the token and when it was made

    @property
    def closed(self) -> bool:
        return self._http.is_closed

    async def close(self) -> None:
        await self._http.aclose()

    async def send(self, token: PushToken, message: PushMessage) -> TokenResult:
        if not DEVICE_TOKEN.fullmatch(token.token):
            return invalid(token, "BadDeviceToken", "not a hexadecimal APNs device token")
        notification_id = apns_id(message.key, token.token)
        body = payload(message)
        try:
            used = self.provider_token()
            answer = await self._post(token.token, notification_id, body, used)
            if answer.status_code == 403 and _reason(answer) in PROVIDER_TOKEN_REASONS:
                self._forget(used)
                answer = await self._post(token.token, notification_id, body, self.provider_token())
        except httpx.HTTPError as exc:
            return transport_result(token, exc, "APNs")
        return classify(token, answer, notification_id)

    def provider_token(self) -> str:
        """The current JWT, made anew when it is 50 minutes old."""
        now = self._clock()
        if self._jwt is not None and now - self._jwt[1] < JWT_REFRESH_S:
            return self._jwt[0]
        headers: dict[str, Any] = {"kid": self._settings.key_id, "typ": None}  # alg + kid
        token = jwt.encode(
            {"iss": self._settings.team_id, "iat": int(now)},
            self._key,
            algorithm="ES256",
            headers=headers,
        )
        self._jwt = (token, now)
        return token

    def _forget(self, used: str) -> None:
        """Drops the JWT if it is still ``used`` (another task may have renewed it)."""
        if self._jwt is not None and self._jwt[0] == used:
            self._jwt = None

    async def _post(
        self, device: str, notification_id: str, body: bytes, provider_token: str
    ) -> httpx.Response:
        settings = self._settings
        expiration = (
            int(self._clock()) + settings.expiration_seconds if settings.expiration_seconds else 0
        )
        headers = {
            "authorization": f"bearer {provider_token}",
            "apns-topic": settings.bundle_id,
            "apns-push-type": "alert",
            "apns-id": notification_id,
            "apns-expiration": str(expiration),
            "apns-priority": "10",
            "content-type": "application/json",
        }
        url = f"{settings.endpoint}/3/device/{device}"
        return await self._http.post(url, content=body, headers=headers)


def classify(token: PushToken, answer: httpx.Response, sent_id: str) -> TokenResult:
    """What an APNs answer means for ``token``."""
    status = answer.status_code
    if status == 200:
        return sent(token, answer.headers.get("apns-id") or sent_id)
    reason = _reason(answer) or str(status)
    message = f"HTTP {status} {reason}"
    if status == 429 or status >= 500:
        wait = retry_after(answer.headers.get("retry-after"), time.time())
        return retry(token, reason, message, wait)
    if status == 410 or (status == 400 and reason in DEAD_TOKEN_REASONS):
        return invalid(token, reason, message)
    if status == 403 or reason in CONFIG_REASONS:
        return failed(token, ERR_CHANNEL_CONFIG, reason, message)
    return failed(token, ERR_PROVIDER_REJECTED, reason, message)


def _reason(answer: httpx.Response) -> str | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    reason = body.get("reason") if isinstance(body, dict) else None
    return reason if isinstance(reason, str) else None
