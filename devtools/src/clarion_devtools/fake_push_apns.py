"""The APNs half of the local push providers (``fake_push`` documents both): HTTP/2
only, over TLS, checking the provider JWT, the ``apns-*`` headers and the payload as
Apple documents them, and answering Apple's ``{"reason": …}``."""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from typing import Any

import jwt

from .fake_push_kit import (
    Accepted,
    Answer,
    Recorder,
    Reply,
    Request,
    Server,
    Tls,
    apns_auth_key,
    misbehave,
    public_key,
)

DEVICE_PATH = re.compile(r"^/3/device/([^/]*)$")
DEVICE_TOKEN = re.compile(r"^[0-9a-fA-F]{16,400}$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
PAYLOAD_MAX = 4096
JWT_MAX_AGE_S = 3600
TROUBLE_REASONS = {
    "invalid": (400, "BadDeviceToken"),
    "unregistered": (410, "Unregistered"),
    "rate_limited": (429, "TooManyRequests"),
    "error": (500, "InternalServerError"),
    "unavailable": (503, "ServiceUnavailable"),
}


def apple_error(status: int, reason: str, headers: dict[str, str] | None = None) -> Reply:
    body: dict[str, Any] = {"reason": reason}
    if status == 410:
        body["timestamp"] = int(time.time() * 1000)  # when the token stopped being valid
    return Reply.json(status, body, headers)


class FakeApns(Recorder):
    """APNs for one team, auth key and app. ``provider_tokens`` lists each distinct JWT
    accepted, in order; ``revoke()`` makes those seen so far answer
    ``ExpiredProviderToken``."""

    def __init__(self, tls: Tls, *, bundle_id: str = "com.example.clarion") -> None:
        super().__init__()
        self.team_id = secrets.token_hex(5).upper()
        self.key_id = secrets.token_hex(5).upper()
        self.private_key = apns_auth_key()
        self.bundle_id = bundle_id
        self.provider_tokens: list[str] = []
        self.revoked: set[str] = set()
        self.server = Server(self._handle, tls=tls, alpn=("h2",))
        self._key = public_key(self.private_key)

    @property
    def base_url(self) -> str:
        return self.server.url

    def settings(self) -> dict[str, Any]:
        """The ``apns`` settings of a push channel that sends here."""
        return {
            "teamId": self.team_id,
            "keyId": self.key_id,
            "privateKey": self.private_key,
            "bundleId": self.bundle_id,
            "baseUrl": self.base_url,
        }

    def revoke(self) -> None:
        self.revoked.update(self.provider_tokens)

    async def _handle(self, request: Request) -> Reply:
        if request.path == "/_fake/stats":
            return self.stats()
        self.requests.append(request)
        if request.http_version != "2":
            return apple_error(400, "BadRequest")  # APNs speaks HTTP/2 only
        match = DEVICE_PATH.match(request.path)
        if match is None:
            return apple_error(404, "BadPath")
        if request.method != "POST":
            return apple_error(405, "MethodNotAllowed")
        refused = self._provider_token(request) or _headers(request, self.bundle_id)
        if refused is not None:
            return refused
        token = match.group(1)
        if not DEVICE_TOKEN.match(token):
            return apple_error(400, "BadDeviceToken")
        body = _payload(request)
        if isinstance(body, Reply):
            return body
        trouble = await misbehave(self.answers.get(token, Answer()))
        if trouble is not None:
            status, reason = TROUBLE_REASONS[trouble[1]]
            return apple_error(status, reason, trouble[2])
        self.accepted.append(Accepted(token, body, request))
        apns_id = request.headers.get("apns-id") or str(uuid.uuid4())
        return Reply(200, b"", {"apns-id": apns_id})

    def _provider_token(self, request: Request) -> Reply | None:
        """Apple's checks of the provider JWT, or None when it is good."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return apple_error(403, "MissingProviderToken")
        if token in self.revoked:
            return apple_error(403, "ExpiredProviderToken")
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["ES256"],
                options={"require": ["iss", "iat"], "verify_iat": False},
            )
        except jwt.PyJWTError:
            return apple_error(403, "InvalidProviderToken")
        if header.get("alg") != "ES256" or header.get("kid") != self.key_id:
            return apple_error(403, "InvalidProviderToken")
        if claims["iss"] != self.team_id:
            return apple_error(403, "InvalidProviderToken")
        if time.time() - float(claims["iat"]) > JWT_MAX_AGE_S:
            return apple_error(403, "ExpiredProviderToken")
        if token not in self.provider_tokens:
            self.provider_tokens.append(token)
        return None


def _headers(request: Request, bundle_id: str) -> Reply | None:
    """Apple's checks of the ``apns-*`` headers, or None when they are good."""
    headers = request.headers
    topic = headers.get("apns-topic")
    if topic is None:
        return apple_error(400, "MissingTopic")
    if topic != bundle_id:
        return apple_error(400, "BadTopic")
    if headers.get("apns-push-type") != "alert":
        return apple_error(400, "InvalidPushType")
    if "apns-id" in headers and not UUID.match(headers["apns-id"]):
        return apple_error(400, "BadMessageId")
    if "apns-expiration" in headers and not headers["apns-expiration"].isdigit():
        return apple_error(400, "BadExpirationDate")
    if headers.get("apns-priority", "10") not in ("1", "5", "10"):
        return apple_error(400, "BadPriority")
    return None


def _payload(request: Request) -> dict[str, Any] | Reply:
    """The payload when it is an alert Apple would show, else its refusal."""
    if not request.body:
        return apple_error(400, "PayloadEmpty")
    if len(request.body) > PAYLOAD_MAX:
        return apple_error(413, "PayloadTooLarge")
    try:
        body = json.loads(request.body)
    except ValueError:
        return apple_error(400, "BadPayload")
    aps = body.get("aps") if isinstance(body, dict) else None
    alert = aps.get("alert") if isinstance(aps, dict) else None
    if not isinstance(alert, dict) or not all(
        isinstance(alert.get(k), str) for k in ("title", "body")
    ):
        return apple_error(400, "BadPayload")
    return dict(body)
