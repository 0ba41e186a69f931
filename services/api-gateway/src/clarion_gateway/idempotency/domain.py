"""The rules of ``Idempotency-Key``: what makes two requests the same, which responses
are kept.

Idempotency stores HTTP responses (status and body), so it is an edge concern: these
rules speak of statuses on purpose. Responses are kept whatever their status, except
500 and 503: those mean nothing was done (or nothing is known), so the key is released
and a retry runs again. A 504 of a realtime send is kept: its command was published, a
retry must not send twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from clarion_shared.errors import Conflict, Invalid

MAX_KEY_LENGTH = 255
RELEASED_STATUSES = frozenset({500, 503})


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes

    @property
    def kept(self) -> bool:
        """Whether a retry is answered with this response (else it runs again)."""
        return self.status not in RELEASED_STATUSES


@dataclass(frozen=True)
class IdempotencyRecord:
    fingerprint: str
    created_at: int
    response: StoredResponse | None  # None while the first request runs


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Invalid(
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters.",
            details=[{"field": "Idempotency-Key", "message": "invalid length"}],
        )
    return key


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same" for an Idempotency-Key: method, path and the
    JSON body (key order and whitespace do not matter)."""
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = body.decode("utf-8", "replace")
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


class KeyReused(Conflict):
    def __init__(self, key: str) -> None:
        super().__init__(
            "This Idempotency-Key was used with another request.",
            details={"idempotencyKey": key},
        )


class StillRunning(Conflict):
    def __init__(self, key: str) -> None:
        super().__init__(
            "A request with this Idempotency-Key is still running.",
            details={"idempotencyKey": key},
        )
