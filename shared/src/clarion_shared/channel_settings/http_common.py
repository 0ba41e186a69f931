"""What the settings of the HTTP-based channels share (``sms``, ``whatsapp``,
``custom``): the model's conventions, URL and header checks, and a validation error said
in words.

Every model is frozen, ignores keys it does not know (API.md: other keys are stored and
ignored) and reads API.md's camelCase names. Each also takes ``timeoutSeconds`` (every
network call of the channel, default 10 s) and ``maxConnections`` (the connections kept
to the provider, default 32), Clarion's own additions, and API.md's
``rateLimitPerSecond``. A URL is checked for its shape here; whether its host may be
private follows ``CLARION_WEBHOOKS_ALLOW_PRIVATE``, which the caller applies.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

URL_MAX_LENGTH = 2048
HEADERS_MAX = 32
HEADER_VALUE_MAX = 4096
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 field-name
# Set by the client itself on every call: a configured header may not replace them.
TRANSPORT_HEADERS = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection", "te"}
)


class HttpSettings(BaseModel):
    """The base of a channel's provider settings."""

    model_config = ConfigDict(
        frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True
    )

    rate_limit_per_second: float | None = Field(default=None, gt=0)
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    max_connections: int = Field(default=32, ge=1, le=1024)


def http_url(value: str) -> str:
    """An absolute http(s) URL with a host and no credentials in it (a query is kept:
    some endpoints take their key there)."""
    if len(value) > URL_MAX_LENGTH:
        raise ValueError(f"must be at most {URL_MAX_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError when out of range
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or port == 0:
        raise ValueError("must be an absolute http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry user info (use headers)")
    if parts.fragment:
        raise ValueError("must not carry a fragment")
    return value


def base_url(value: str) -> str:
    """A provider's base URL: as :func:`http_url`, without a query, with no trailing
    slash (paths are appended to it)."""
    http_url(value)
    if urlsplit(value).query:
        raise ValueError("must not carry a query")
    return value.rstrip("/")


def headers(value: Mapping[str, str], reserved: Collection[str]) -> dict[str, str]:
    """Extra request headers: valid names, single-line values, none that the client sets
    itself (``reserved``, compared without case)."""
    if len(value) > HEADERS_MAX:
        raise ValueError(f"must hold at most {HEADERS_MAX} headers")
    taken = {name.lower() for name in reserved} | TRANSPORT_HEADERS
    seen: set[str] = set()
    for name, text in value.items():
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid header name")
        if name.lower() in taken:
            raise ValueError(f"{name} is set by Clarion and cannot be configured")
        if name.lower() in seen:
            raise ValueError(f"{name} is given twice")
        seen.add(name.lower())
        if len(text) > HEADER_VALUE_MAX or any(c in text for c in "\r\n\0"):
            raise ValueError(
                f"the value of {name} must be one line of at most {HEADER_VALUE_MAX} characters"
            )
    return dict(value)


def problem(exc: ValidationError, what: str) -> str:
    """``exc`` in words, naming each field by its API.md name and never echoing a value
    (a credential may be among them)."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{field}: {message}" if field else message)
    return f"{what}: " + "; ".join(parts)
