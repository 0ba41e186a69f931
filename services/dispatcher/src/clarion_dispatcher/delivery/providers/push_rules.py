"""Pure rules of push delivery, shared by the FCM and APNs clients: which tokens a user
has, what a notification carries, and what the answers for several tokens come to.

A user may hold several tokens (``pushTokens: [{token, platform}]``); each is sent to on
its own, and ``outcome_of`` folds their results into one ``Outcome``: ``Sent`` when any
token accepted the message, ``Retry`` when none did and one failed for a while,
``Failed`` otherwise (``ERR_INVALID_PUSH_TOKEN`` when every token is invalid). Tokens
the provider reported invalid or unregistered travel in every outcome
(``invalid_tokens``, and ``Sent.detail["invalidTokens"]`` for the record) so that the
worker removes them from the user whatever became of the message. No I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import httpx
from pydantic import JsonValue

from clarion_shared.contracts.base import JsonObject

from .base import (
    ERR_CHANNEL_CONFIG,
    ERR_INVALID_PUSH_TOKEN,
    ERR_NO_CONTACT_POINT,
    ERR_PROVIDER_REJECTED,
    ERR_PROVIDER_UNAVAILABLE,
    Failed,
    Outbound,
    Outcome,
    Retry,
    Sent,
)
from .http_common import RefusedAddress

Platform = Literal["fcm", "apns"]
PLATFORMS: tuple[Platform, ...] = ("fcm", "apns")
TokenStatus = Literal["sent", "invalid", "retry", "failed"]
MESSAGE_CAP = 500  # characters of an outcome's message
FCM_RESERVED_KEYS = frozenset({"from", "message_type", "collapse_key", "notification"})
FCM_RESERVED_PREFIXES = ("google.", "gcm.")


@dataclass(frozen=True)
class PushToken:
    token: str
    platform: Platform


def push_tokens(contact: JsonObject) -> list[PushToken]:
    """The user's usable tokens, in order, without repeats; malformed entries skipped."""
    raw = contact.get("pushTokens")
    found: dict[tuple[str, str], PushToken] = {}
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        token, platform = item.get("token"), item.get("platform")
        if isinstance(token, str) and token.strip() and platform in PLATFORMS:
            entry = PushToken(token.strip(), "fcm" if platform == "fcm" else "apns")
            found.setdefault((entry.token, entry.platform), entry)
    return list(found.values())


@dataclass(frozen=True)
class PushMessage:
    """What every token of one delivery is sent: ``data`` holds the content's other
    keys and the delivery's ids (``notificationId``, ``deliveryId``) for the app."""

    key: str  # the delivery's idempotency key
    title: str
    body: str
    data: dict[str, JsonValue]

    @classmethod
    def of(cls, outbound: Outbound) -> PushMessage:
        content = outbound.content
        extra = {k: v for k, v in content.items() if k not in ("title", "body")}
        ids: dict[str, JsonValue] = {
            "notificationId": outbound.send_id,
            "deliveryId": outbound.idempotency_key,
        }
        return cls(
            key=outbound.idempotency_key,
            title=_text(content.get("title")),
            body=_text(content.get("body")),
            data={**extra, **ids},
        )

    def string_data(self) -> dict[str, str]:
        """``data`` as FCM takes it: every value a string (JSON for the others), without
        the keys FCM reserves (it refuses a message that uses one)."""
        return {
            key: value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
            for key, value in self.data.items()
            if key not in FCM_RESERVED_KEYS and not key.startswith(FCM_RESERVED_PREFIXES)
        }


def _text(value: JsonValue) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class TokenResult:
    """What became of one token: ``error`` is Clarion's code (``ERR_…``), ``reason``
    the provider's own (``UNREGISTERED``, ``BadDeviceToken``, an HTTP status)."""

    token: str
    platform: Platform
    status: TokenStatus
    provider_id: str | None = None
    error: str | None = None
    reason: str | None = None
    message: str = ""
    retry_after_s: float | None = None

    def as_json(self) -> JsonObject:
        out: JsonObject = {"token": self.token, "platform": self.platform, "status": self.status}
        optional: dict[str, JsonValue] = {
            "providerId": self.provider_id,
            "code": self.error,
            "reason": self.reason,
            "message": self.message or None,
            "retryAfter": self.retry_after_s,
        }
        out.update({key: value for key, value in optional.items() if value is not None})
        return out

    def summary(self) -> str:
        said = f"{self.reason}: {self.message}" if self.message else str(self.reason)
        return f"{self.platform} {said}"


def sent(token: PushToken, provider_id: str | None) -> TokenResult:
    return TokenResult(token.token, token.platform, "sent", provider_id=provider_id)


def invalid(token: PushToken, reason: str, message: str) -> TokenResult:
    return TokenResult(
        token.token, token.platform, "invalid", None, ERR_INVALID_PUSH_TOKEN, reason, message
    )


def retry(
    token: PushToken, reason: str, message: str, retry_after_s: float | None = None
) -> TokenResult:
    return TokenResult(
        token.token,
        token.platform,
        "retry",
        None,
        ERR_PROVIDER_UNAVAILABLE,
        reason,
        message,
        retry_after_s,
    )


def failed(token: PushToken, error: str, reason: str, message: str) -> TokenResult:
    return TokenResult(token.token, token.platform, "failed", None, error, reason, message)


def outcome_of(results: Sequence[TokenResult]) -> Outcome:
    """One outcome for a user's tokens (see the module's docstring)."""
    if not results:
        return Failed(ERR_NO_CONTACT_POINT, "The user has no push token for this channel.")
    invalid_tokens = tuple(r.token for r in results if r.status == "invalid")
    accepted = [r for r in results if r.status == "sent"]
    if accepted:
        detail: JsonObject = {
            "tokens": [r.as_json() for r in results],
            "invalidTokens": list(invalid_tokens),
        }
        return Sent(accepted[0].provider_id, detail, invalid_tokens)
    transient = [r for r in results if r.status == "retry"]
    if transient:
        waits = [r.retry_after_s for r in transient if r.retry_after_s is not None]
        return Retry(
            ERR_PROVIDER_UNAVAILABLE,
            _said(transient),
            max(waits) if waits else None,
            invalid_tokens=invalid_tokens,
        )
    refused = [r for r in results if r.status == "failed"]
    if refused:
        config = [r for r in refused if r.error == ERR_CHANNEL_CONFIG]
        code = ERR_CHANNEL_CONFIG if config else (refused[0].error or ERR_PROVIDER_REJECTED)
        return Failed(code, _said(config or refused), invalid_tokens=invalid_tokens)
    return Failed(
        ERR_INVALID_PUSH_TOKEN,
        _said(results, f"Every push token ({len(results)}) is invalid or unregistered: "),
        invalid_tokens=invalid_tokens,
    )


def _said(results: Sequence[TokenResult], prefix: str = "") -> str:
    """The distinct reasons, in order, capped (tokens are never in a message)."""
    text = prefix + "; ".join(dict.fromkeys(r.summary() for r in results))
    return text if len(text) <= MESSAGE_CAP else text[: MESSAGE_CAP - 1] + "…"


def transport_result(token: PushToken, exc: httpx.HTTPError, who: str) -> TokenResult:
    """No answer: a refused address fails for good (the channel's URL cannot be used);
    a timeout or a broken connection is transient."""
    if isinstance(exc.__cause__, RefusedAddress):
        return failed(token, ERR_CHANNEL_CONFIG, "refused address", short(str(exc.__cause__)))
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return failed(token, ERR_CHANNEL_CONFIG, "bad URL", short(f"{who}: {exc}"))
    if isinstance(exc, httpx.TimeoutException):
        return retry(token, "timeout", f"{who} did not answer in time")
    return retry(token, "connection", short(f"{who} unreachable: {exc!r}"))


def short(text: str, cap: int = 200) -> str:
    """A provider's words, trimmed for a message."""
    text = " ".join(text.split())
    return text if len(text) <= cap else text[: cap - 1] + "…"
