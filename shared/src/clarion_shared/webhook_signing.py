"""Signing outgoing HTTP calls as the Standard Webhooks spec says
(https://www.standardwebhooks.com): the webhook-emitter's deliveries, and later the
custom channel's posts, so that a receiver verifies both with any Standard Webhooks
library.

A secret is ``whsec_`` and the base64 of its key. A call carries ``webhook-id`` (the
same on every retry of one event), ``webhook-timestamp`` (Unix seconds of this attempt)
and ``webhook-signature``: ``v1,`` and the base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``
under the key, one per secret, space-separated (two while a secret is being rotated).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
KEY_BYTES = 24  # as Svix generates them


class BadSecret(ValueError):
    """Not ``whsec_`` followed by base64."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise BadSecret("a signing secret is whsec_ followed by base64") from exc
    if not key:
        raise BadSecret("a signing secret has a key")
    return key


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of id.timestamp.body>`` under ``secret``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    signing_secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three headers of one attempt, signed with every secret given (the new one
    and the old one while a rotation lets receivers catch up)."""
    if not signing_secrets:
        raise BadSecret("at least one signing secret is needed")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret, msg_id, timestamp, body) for secret in signing_secrets
        ),
    }
