"""Ids and clocks. Derived ids make redelivered work land on the same documents."""

from __future__ import annotations

import hashlib
import secrets
import time


def derive_id(*parts: str) -> str:
    """A stable id for a tuple of strings (e.g. batch id, uid, channel).

    The same inputs always give the same id, so a replayed Kafka record upserts the
    same document instead of creating a second one.
    """
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12).hexdigest()
    return digest


def new_id(prefix: str = "") -> str:
    """A fresh random id, for things created once by a client request."""
    return f"{prefix}{secrets.token_hex(12)}"


def now() -> int:
    """Unix seconds, the API's timestamp unit."""
    return int(time.time())
