"""Apps and their API keys: ids, generated keys, the stored form of a key."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from clarion_shared.errors import Conflict, Invalid

APP_ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$")


@dataclass(frozen=True)
class App:
    app_id: str
    name: str
    created_at: int


def hash_key(api_key: str) -> str:
    """Keys are stored as their SHA-256: a database dump reveals no usable key.

    A fast hash is right here: keys are 192-bit random strings, not passwords.
    """
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return f"ck_{secrets.token_hex(24)}"


def new_app_id() -> str:
    return f"app{secrets.token_hex(6)}"


def check_app_id(app_id: str) -> str:
    if not APP_ID_RE.match(app_id):
        raise Invalid(
            "appId may hold letters, digits, '_' and '-' (1-64, starting with a letter or digit).",
            details=[{"field": "appId", "message": "invalid app id"}],
        )
    return app_id


def check_api_key(api_key: str) -> str:
    if not 8 <= len(api_key) <= 200 or any(c.isspace() for c in api_key):
        raise Invalid(
            "apiKey must be 8-200 characters without spaces.",
            details=[{"field": "apiKey", "message": "invalid api key"}],
        )
    return api_key


class AppExists(Conflict):
    def __init__(self, app_id: str) -> None:
        super().__init__(
            "An app with this appId or apiKey already exists.", details={"appId": app_id}
        )
