"""Firebase Cloud Messaging, HTTP v1 API, as Google documents it.

Auth is the OAuth2 service-account flow: a JWT signed RS256 with the account's private
key (``iss`` the account's email, ``scope`` firebase.messaging, ``aud`` its
``token_uri``, one hour of life) is exchanged at the token URL
(``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…``) for an access
token, kept until shortly before it expires; one exchange at a time, however many sends
wait for it. Each token is then one ``POST {baseUrl}/v1/projects/{projectId}/
messages:send`` with ``{"message": {"token", "notification": {title, body}, "data"}}``.

Answers: 200 ``{name}`` is sent (the name is the provider's id); ``UNREGISTERED`` (404)
and ``INVALID_ARGUMENT`` (400) about the token mean the token is dead; 429 and 5xx are
transient (``Retry-After`` honoured); a 401 drops the access token, gets a new one and
tries once more, and a second 401 means the account does not work
(``ERR_CHANNEL_CONFIG``), as does a 403 other than ``SENDER_ID_MISMATCH``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from clarion_shared.channel_settings.push import FcmSettings
from clarion_shared.logging import get_logger
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
    short,
    transport_result,
)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S = 3600  # the most Google accepts
REFRESH_MARGIN_S = 300.0  # an access token is replaced this long before it expires
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"

Clock = Callable[[], float]
log = get_logger(__name__)


def signing_key(settings: FcmSettings) -> RSAPrivateKey:
    """The service account's RSA key, or a ConfigError saying what is wrong with it."""
    try:
        key = load_pem_private_key(settings.service_account.private_key.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(
            "fcm.serviceAccount.private_key is not a readable PEM private key"
        ) from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError("fcm.serviceAccount.private_key is not an RSA key")
    return key


@dataclass(frozen=True)
class _Access:
    token: str
    refresh_at: float  # by the client's clock


class _TokenTrouble(Exception):
    """The token exchange failed: for a while (``transient``) or for good."""

    def __init__(
        self, transient: bool, reason: str, message: str, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.transient, self.reason, self.message = transient, reason, message
        self.retry_after_s = retry_after_s

    @classmethod
    def of(cls, exc: httpx.HTTPError) -> _TokenTrouble:
        """The token URL did not answer (see ``transport_result``)."""
        said = transport_result(PushToken("", "fcm"), exc, "the OAuth2 token URL")
        return cls(said.status == "retry", said.reason or "connection", said.message)

    def copy(self) -> _TokenTrouble:
        return _TokenTrouble(self.transient, self.reason, self.message, self.retry_after_s)

    def result(self, token: PushToken) -> TokenResult:
        if self.transient:
            return retry(token, self.reason, self.message, self.retry_after_s)
        return failed(token, ERR_CHANNEL_CONFIG, self.reason, self.message)


class FcmClient:
    """One channel's FCM sender: its connection pool (``http``, HTTP/2 where the server
    speaks it, closed with the client) and access token; safe for many tasks at once."""

    def __init__(
        self,
        settings: FcmSettings,
        key: RSAPrivateKey,
        http: httpx.AsyncClient,
        *,
        clock: Clock = time.time,
    ) -> None:
        self._settings = settings
        self._key = key
        self._http = http
        self._clock = clock
        self._access: _Access | None = None
        self._lock = asyncio.Lock()
        self._trouble: tuple[float, _TokenTrouble] | None = None  # last failed exchange

    @property
    def closed(self) -> bool:
        return self._http.is_closed

    async def close(self) -> None:
        await self._http.aclose()

    async def send(self, token: PushToken, message: PushMessage) -> TokenResult:
        body = {
            "message": {
                "token": token.token,
                "notification": {"title": message.title, "body": message.body},
                "data": message.string_data(),
            }
        }
        try:
            access = await self._access_token()
            answer = await self._post(body, access)
            if answer.status_code == 401 and _error_code(answer) != "THIRD_PARTY_AUTH_ERROR":
                self._forget(access)
                answer = await self._post(body, await self._access_token())
        except _TokenTrouble as trouble:
            return trouble.result(token)
        except httpx.HTTPError as exc:
            return transport_result(token, exc, "FCM")
        return classify(token, answer)

    async def _post(self, body: dict[str, Any], access: str) -> httpx.Response:
        return await self._http.post(
            self._settings.send_url, json=body, headers={"authorization": f"Bearer {access}"}
        )

    def _forget(self, access: str) -> None:
        """Drops the cached token if it is still ``access`` (a 401 said it no longer
        works); when another task already replaced it, the new one is kept."""
        if self._access is not None and self._access.token == access:
            self._access = None

    async def _access_token(self) -> str:
        access = self._access
        if access is not None and self._clock() < access.refresh_at:
            return access.token
        asked_at = time.monotonic()
        async with self._lock:
            access = self._access
            if access is not None and self._clock() < access.refresh_at:
                return access.token  # another task refreshed it while this one waited
            if self._trouble is not None and self._trouble[0] >= asked_at:
                raise self._trouble[1].copy()  # it failed while this one waited: same answer
            try:
                self._access = await self._exchange()
            except _TokenTrouble as trouble:
                self._trouble = (time.monotonic(), trouble)
                raise
            return self._access.token

    def _assertion(self, now: float) -> str:
        account = self._settings.service_account
        claims = {
            "iss": account.client_email,
            "scope": SCOPE,
            "aud": account.token_uri,
            "iat": int(now),
            "exp": int(now) + ASSERTION_LIFETIME_S,
        }
        headers = {"kid": account.private_key_id} if account.private_key_id else None
        return jwt.encode(claims, self._key, algorithm="RS256", headers=headers)

    async def _exchange(self) -> _Access:
        """A new access token from the token URL (the OAuth2 JWT bearer grant)."""
        now = self._clock()
        form = {"grant_type": GRANT_TYPE, "assertion": self._assertion(now)}
        try:
            answer = await self._http.post(self._settings.oauth_url, data=form)
        except httpx.HTTPError as exc:
            raise _TokenTrouble.of(exc) from None
        body = _json(answer)
        status = answer.status_code
        if status == 429 or status >= 500:
            wait = retry_after(answer.headers.get("retry-after"), time.time())
            raise _TokenTrouble(True, str(status), "the OAuth2 token URL is unavailable", wait)
        token, lifetime = body.get("access_token"), body.get("expires_in")
        if status != 200 or not isinstance(token, str) or not token:
            reason = body.get("error")
            said = body.get("error_description") or reason or f"HTTP {status}"
            raise _TokenTrouble(
                False,
                reason if isinstance(reason, str) else str(status),
                short(f"the service account got no access token: {said}"),
            )
        seconds = float(lifetime) if isinstance(lifetime, int | float) else 3600.0
        log.info("push.fcm_token_refreshed", project=self._settings.project_id, expires_in=seconds)
        return _Access(token, now + seconds - min(REFRESH_MARGIN_S, seconds / 2))


def classify(token: PushToken, answer: httpx.Response) -> TokenResult:
    """What an answer of ``messages:send`` means for ``token``."""
    status = answer.status_code
    if 200 <= status < 300:
        name = _json(answer).get("name")
        return sent(token, name if isinstance(name, str) else None)
    code = _error_code(answer) or str(status)
    message = short(_error_message(answer) or f"HTTP {status}")
    if status == 429 or status >= 500:
        wait = retry_after(answer.headers.get("retry-after"), time.time())
        return retry(token, code, message, wait)
    if code == "UNREGISTERED":
        return invalid(token, code, message)
    if status == 400 and code == "INVALID_ARGUMENT" and _about_the_token(answer):
        return invalid(token, code, message)
    if status in (401, 403) and code != "SENDER_ID_MISMATCH":
        return failed(token, ERR_CHANNEL_CONFIG, code, message)
    return failed(token, ERR_PROVIDER_REJECTED, code, message)


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error(answer: httpx.Response) -> dict[str, Any]:
    error = _json(answer).get("error")
    return error if isinstance(error, dict) else {}


def _details(answer: httpx.Response) -> list[dict[str, Any]]:
    details = _error(answer).get("details")
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _error_code(answer: httpx.Response) -> str | None:
    """FCM's own ``errorCode`` (its ``FcmError`` detail), else the API's ``status``."""
    for detail in _details(answer):
        if detail.get("@type") == FCM_ERROR_TYPE and isinstance(detail.get("errorCode"), str):
            return str(detail["errorCode"])
    status = _error(answer).get("status")
    return status if isinstance(status, str) else None


def _error_message(answer: httpx.Response) -> str | None:
    message = _error(answer).get("message")
    return message if isinstance(message, str) else None


def _about_the_token(answer: httpx.Response) -> bool:
    """An ``INVALID_ARGUMENT`` names the token (not another field of the message): a
    field violation on ``message.token``, or, without any, words about the token."""
    fields = [
        violation.get("field")
        for detail in _details(answer)
        if detail.get("@type") == BAD_REQUEST_TYPE
        for violation in detail.get("fieldViolations") or []
        if isinstance(violation, dict)
    ]
    if fields:
        return "message.token" in fields
    return "registration token" in (_error_message(answer) or "").lower()
