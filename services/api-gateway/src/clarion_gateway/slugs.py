"""The API's ids: slugs (``channelId``, ``templateId``) made from display names, and uids."""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterator

from clarion_shared.errors import Invalid

UID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,100}$")
SLUG_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,99}$")


def slugify(name: str, sep: str = "-", max_len: int = 64) -> str:
    """A URL-safe id from a display name: ASCII letters and digits joined by ``sep``.

    Returns "" when nothing usable is left (e.g. a name in a non-Latin script); the
    caller then makes one up.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-zA-Z0-9]+", sep, ascii_name).strip(sep).lower()
    return slug[:max_len].strip(sep)


def check_slug(value: str, what: str) -> str:
    if not SLUG_RE.match(value):
        raise Invalid(
            f"{what} may hold letters, digits, '_' and '-' (1-100, starting with a "
            "letter or digit).",
            details=[{"field": what, "message": "invalid slug"}],
        )
    return value


def check_uid(value: str) -> bool:
    return bool(UID_RE.match(value))


# A generated id that collides is tried again with a suffix, this many times.
GENERATED_ID_RETRIES = 5


def candidate_ids(base: str, sep: str) -> Iterator[str]:
    """The ids to try for a generated id: ``base``, then ``base`` with a random suffix."""
    yield base
    while True:
        yield f"{base[:57]}{sep}{secrets.token_hex(3)}"
