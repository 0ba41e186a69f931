"""Local push providers for tests and the end-to-end runs: FCM HTTP v1 with Google's
OAuth2 token endpoint (``FakeFcm``) and APNs (``FakeApns``), each implementing the
provider's documented HTTP contract and checking every request against it.

``FakeFcm`` (one server): ``POST /token`` is the OAuth2 JWT-bearer grant: the assertion
must be RS256-signed by a service account the server trusts (``trust``), with ``iss``,
the firebase.messaging ``scope``, ``aud`` (the token URL), ``iat`` and ``exp`` at most an
hour apart; it answers ``{access_token, expires_in, token_type}`` or Google's
``{error, error_description}``. ``POST /v1/projects/{projectId}/messages:send`` needs a
live ``Bearer`` token from that endpoint and a body ``{"message": {"token",
"notification": {title, body}, "data": {string: string}}}``; it answers ``{name}`` or
Google's error envelope (``UNAUTHENTICATED``, ``PERMISSION_DENIED``, ``INVALID_ARGUMENT``
with an ``FcmError`` detail, ``UNREGISTERED``, ``QUOTA_EXCEEDED``, ``INTERNAL``,
``UNAVAILABLE``).

``FakeApns`` (HTTP/2 only, over TLS, ALPN h2): ``POST /3/device/{token}`` needs
``authorization: bearer <JWT>`` (ES256, header ``kid`` = the Key ID, ``iss`` = the Team
ID, ``iat`` less than an hour old, signed by the auth key), ``apns-topic`` = the bundle
id, ``apns-push-type: alert``, and when present a canonical ``apns-id``, a numeric
``apns-expiration`` and ``apns-priority`` 5 or 10; the body must be a JSON object of at
most 4 KB with ``aps.alert.title`` and ``aps.alert.body``. It answers 200 with
``apns-id`` or Apple's ``{"reason": …}`` (``BadDeviceToken``, 410 ``Unregistered``,
``TooManyRequests``, ``InternalServerError``, ``ServiceUnavailable``,
``InvalidProviderToken``, ``ExpiredProviderToken``, ``BadTopic``…); a malformed body is
400 ``BadPayload`` (this server's own word: Apple documents none for it).

Both keep every request (``requests``) and what they accepted (``accepted``), count
connections and HTTP versions, and answer a token as ``answers[token]`` says
(``fake_push_kit.Answer``). ``revoke()`` makes the tokens issued so far fail as expired.
Run standalone (``python -m clarion_devtools.fake_push --dir D``) they write keys, a
certificate and a push channel's ``metadata`` to ``D`` and serve until stopped;
``GET /_fake/stats`` on either answers ``{requests, accepted, unique}`` (unique:
distinct token and ``deliveryId`` pairs accepted).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt

from .fake_push_apns import FakeApns
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
    self_signed,
    service_account,
)

__all__ = [
    "Accepted",
    "Answer",
    "FakeApns",
    "FakeFcm",
    "Tls",
    "apns_auth_key",
    "channel_metadata",
    "self_signed",
    "service_account",
]

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
SEND_PATH = re.compile(r"^/v1/projects/([^/]+)/messages:send$")
MESSAGE_FIELDS = frozenset(
    {"name", "data", "notification", "android", "webpush", "apns", "fcm_options"}
    | {"fcmOptions", "token", "topic", "condition"}
)


def google_error(
    status: int, code: str, message: str, fcm_code: str | None = None, **more: Any
) -> Reply:
    details: list[dict[str, Any]] = []
    if fcm_code is not None:
        details.append({"@type": FCM_ERROR, "errorCode": fcm_code})
    if "field" in more:
        violation = {"field": more["field"], "description": message}
        details.append({"@type": BAD_REQUEST, "fieldViolations": [violation]})
    error = {"code": status, "message": message, "status": code, "details": details}
    headers = {"retry-after": more["retry_after"]} if more.get("retry_after") else None
    return Reply.json(status, {"error": error}, headers)


class FakeFcm(Recorder):
    """FCM HTTP v1 and its OAuth2 token endpoint; ``audience`` is the ``aud`` a JWT
    must carry (default: this server's token URL)."""

    def __init__(
        self, project_id: str, tls: Tls | None = None, *, token_lifetime_s: int = 3599
    ) -> None:
        super().__init__()
        self.project_id = project_id
        self.token_lifetime_s = token_lifetime_s
        self.token_answer = Answer()  # how the token endpoint answers
        self.audience: str | None = None
        self.accounts: dict[str, tuple[Any, str | None]] = {}  # email → public key, key id
        self.token_requests: list[dict[str, Any]] = []  # the verified JWT claims
        self.issued: dict[str, float] = {}  # access token → expires at
        self.server = Server(self._handle, tls=tls)
        self._names = 0

    @property
    def base_url(self) -> str:
        return self.server.url

    @property
    def token_url(self) -> str:
        return f"{self.server.url}/token"

    def trust(self, account: Mapping[str, str]) -> None:
        key = public_key(account["private_key"])
        self.accounts[account["client_email"]] = (key, account.get("private_key_id"))

    def new_account(self, name: str = "clarion") -> dict[str, str]:
        """A service account this server trusts, its ``token_uri`` pointing here."""
        email = f"{name}-{secrets.token_hex(3)}@{self.project_id}.iam.gserviceaccount.com"
        account = service_account(email, self.token_url, self.project_id)
        self.trust(account)
        return account

    def revoke(self) -> None:
        self.issued.clear()

    async def _handle(self, request: Request) -> Reply:
        if request.path == "/_fake/stats":
            return self.stats()
        self.requests.append(request)
        if request.method == "POST" and request.path == "/token":
            return await self._token(request)
        match = SEND_PATH.match(request.path)
        if request.method == "POST" and match:
            return await self._send(request, match.group(1))
        return google_error(404, "NOT_FOUND", f"no such method: {request.method} {request.path}")

    async def _token(self, request: Request) -> Reply:
        trouble = await misbehave(self.token_answer)
        if trouble is not None:
            return Reply.json(trouble[0], {"error": trouble[1]}, trouble[2])
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return _oauth_error("invalid_request", "the body must be form-encoded")
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != GRANT_TYPE:
            return _oauth_error("unsupported_grant_type", "Invalid grant_type.")
        claims = self._verified(form.get("assertion", ""))
        if isinstance(claims, Reply):
            return claims
        self.token_requests.append(claims)
        token = f"ya29.fake-{secrets.token_urlsafe(24)}"
        self.issued[token] = time.time() + self.token_lifetime_s
        body = {"access_token": token, "expires_in": self.token_lifetime_s, "token_type": "Bearer"}
        return Reply.json(200, body)

    def _verified(self, assertion: str) -> dict[str, Any] | Reply:
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return _oauth_error("invalid_grant", "Invalid JWT: the assertion is not a JWT.")
        known = self.accounts.get(str(unverified.get("iss")))
        if known is None:
            return _oauth_error("invalid_grant", "Invalid grant: account not found")
        key, key_id = known
        if header.get("alg") != "RS256" or (key_id and header.get("kid") != key_id):
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                key,
                algorithms=["RS256"],
                audience=self.audience or self.token_url,
                options={"require": ["iss", "aud", "iat", "exp", "scope"]},
                leeway=60,
            )
        except jwt.InvalidSignatureError:
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        except jwt.PyJWTError as exc:
            return _oauth_error("invalid_grant", f"Invalid JWT: {exc}")
        if int(claims["exp"]) - int(claims["iat"]) > 3600:
            return _oauth_error(
                "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes)"
            )
        if SCOPE not in str(claims["scope"]).split():
            return _oauth_error("invalid_scope", "the firebase.messaging scope is required")
        return claims

    async def _send(self, request: Request, project_id: str) -> Reply:
        bearer = request.headers.get("authorization", "")
        access = bearer[7:] if bearer.startswith("Bearer ") else ""
        if self.issued.get(access, 0.0) <= time.time():
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
            )
        if project_id != self.project_id:
            return google_error(
                403, "PERMISSION_DENIED", f"Permission denied on resource project {project_id}."
            )
        body = _fcm_body(request)
        if isinstance(body, Reply):
            return body
        token = body["message"]["token"]
        trouble = await misbehave(self.answers.get(token, Answer()))
        if trouble is not None:
            return _fcm_trouble(trouble)
        self.accepted.append(Accepted(token, body, request))
        self._names += 1
        name = f"projects/{project_id}/messages/0:{int(time.time() * 1000)}%{self._names:08x}"
        return Reply.json(200, {"name": name})


def _oauth_error(error: str, description: str) -> Reply:
    return Reply.json(400, {"error": error, "error_description": description})


def _fcm_body(request: Request) -> dict[str, Any] | Reply:
    """The body when it has the shape FCM takes, else its 400 INVALID_ARGUMENT."""

    def bad(message: str, at: str) -> Reply:
        return google_error(400, "INVALID_ARGUMENT", message, "INVALID_ARGUMENT", field=at)

    if not request.headers.get("content-type", "").startswith("application/json"):
        return bad("Invalid JSON payload received: not JSON", "")
    try:
        body = json.loads(request.body)
    except ValueError:
        return bad("Invalid JSON payload received.", "")
    if not isinstance(body, dict) or set(body) - {"message", "validate_only"}:
        return bad("Invalid JSON payload received. Unknown name at top level.", "")
    message = body.get("message")
    if not isinstance(message, dict):
        return bad("message is required", "message")
    unknown = set(message) - MESSAGE_FIELDS
    if unknown:
        return bad(f'Invalid JSON payload received. Unknown name "{min(unknown)}"', "message")
    if not isinstance(message.get("token"), str) or not message["token"]:
        return bad("Recipient of the message is not set.", "message.token")
    notification = message.get("notification", {})
    if not isinstance(notification, dict) or any(
        not isinstance(notification.get(k, ""), str) for k in ("title", "body")
    ):
        return bad("Invalid value at 'message.notification'", "message.notification")
    data = message.get("data", {})
    if not isinstance(data, dict):
        return bad("Invalid value at 'message.data'", "message.data")
    for index, (key, value) in enumerate(data.items()):
        if not isinstance(value, str):
            where = f"message.data[{index}].value"
            return bad(f"Invalid value at '{where}' (TYPE_STRING), {value}", where)
        if key.startswith(("google.", "gcm.")) or key in ("from", "message_type"):
            return bad(f"Invalid data key: {key}", f"message.data[{index}].key")
    return body


def _fcm_trouble(trouble: tuple[int, str, dict[str, str] | None]) -> Reply:
    status, kind, headers = trouble
    wait = (headers or {}).get("retry-after")
    if kind == "invalid":
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            "INVALID_ARGUMENT",
        )
    if kind == "unregistered":
        return google_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
    if kind == "rate_limited":
        return google_error(
            429, "RESOURCE_EXHAUSTED", "Quota exceeded.", "QUOTA_EXCEEDED", retry_after=wait
        )
    if kind == "error":
        return google_error(500, "INTERNAL", "Internal error.", "INTERNAL", retry_after=wait)
    return google_error(
        status,
        "UNAVAILABLE",
        "The service is currently unavailable.",
        "UNAVAILABLE",
        retry_after=wait,
    )


def channel_metadata(fcm: FakeFcm, apns: FakeApns, account: Mapping[str, str]) -> dict[str, Any]:
    """The ``metadata`` of a push channel that sends to these two servers."""
    return {
        "fcm": {
            "projectId": fcm.project_id,
            "serviceAccount": dict(account),
            "baseUrl": fcm.base_url,
        },
        "apns": {**apns.settings(), "production": False},
    }


async def _serve(directory: Path, fcm_port: int, apns_port: int) -> None:
    tls = self_signed(directory)
    fcm = FakeFcm("clarion-local", tls)
    fcm.server.port = fcm_port
    apns = FakeApns(tls)
    apns.server.port = apns_port
    await fcm.server.start()
    await apns.server.start()
    metadata = channel_metadata(fcm, apns, fcm.new_account())
    (directory / "push-channel.json").write_text(json.dumps(metadata, indent=2))
    (directory / "push-channel.json").chmod(0o600)
    print(json.dumps({"fcm": fcm.base_url, "apns": apns.base_url, "ca": str(tls.certfile)}))
    try:
        await asyncio.Event().wait()
    finally:
        await fcm.server.stop()
        await apns.server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True, help="keys, certificate, metadata")
    parser.add_argument("--fcm-port", type=int, default=0)
    parser.add_argument("--apns-port", type=int, default=0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.dir, args.fcm_port, args.apns_port))


if __name__ == "__main__":
    main()
