"""Settings of an ``email`` channel (API.md Channels): an SMTP relay and a sender.

``{smtp: {host, port, security: "starttls" | "tls" | "none", username?, password?},
from: {email, name?}, replyTo?, listUnsubscribe?, rateLimitPerSecond?}``, and what the
delivery worker's SMTP client needs, each with a default: ``poolSize`` (connections
kept open per channel), ``connectTimeoutSeconds`` (connect, TLS handshake, greeting),
``timeoutSeconds`` (every SMTP command after that), ``maxIdleSeconds`` (a connection
unused for longer is reopened rather than trusted) and ``heloName`` (the EHLO name).

``listUnsubscribe`` is a ``mailto:`` or ``https:`` URI, or a list of them; the
``List-Unsubscribe`` header is sent only when it is set. Addresses are checked for their
shape only (no DNS): ``email_address`` is the one rule, used for recipients too.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic.alias_generators import to_camel

Security = Literal["starttls", "tls", "none"]

# RFC 5322 dot-atom local part (ASCII; a quoted local part is not accepted), and a
# hostname's labels after IDNA: letters, digits, inner hyphens.
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_UNSUBSCRIBE_SCHEMES = ("mailto:", "https://", "http://")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def email_address(value: str) -> str | None:
    """``value`` as an address to send to (the domain in IDNA, lower case), or None
    when it is not one: ``local@domain``, a dot-atom local part of at most 64
    characters, a domain of at least two labels, at most 254 characters in all."""
    local, at, domain = value.strip().rpartition("@")
    if not at or len(local) > 64 or not _LOCAL_PART.match(local):
        return None
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return None
    address = f"{local}@{ascii_domain}"
    return address if len(address) <= 254 else None


def _address(value: str) -> str:
    address = email_address(value)
    if address is None:
        raise ValueError("must be an email address (name@example.com)")
    return address


class _Settings(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True
    )


class SmtpServer(_Settings):
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(ge=1, le=65535)
    security: Security
    username: str | None = Field(default=None, min_length=1)
    password: SecretStr | None = None  # never printed; "" when a username has none


class Sender(_Settings):
    email: str
    name: str | None = Field(default=None, max_length=200)

    check_email = field_validator("email")(_address)

    @field_validator("name")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and _CONTROL.search(value):
            raise ValueError("must be one line of text (no control characters)")
        return value or None


class EmailSettings(_Settings):
    smtp: SmtpServer
    sender: Sender = Field(alias="from")
    reply_to: str | None = None
    list_unsubscribe: tuple[str, ...] | None = None
    rate_limit_per_second: float | None = Field(default=None, gt=0)
    pool_size: int = Field(default=8, ge=1, le=100)
    connect_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    max_idle_seconds: float = Field(default=30.0, ge=0, le=3600)
    helo_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.\-\[\]:]{1,253}$")

    @field_validator("reply_to")
    @classmethod
    def _reply_to(cls, value: str | None) -> str | None:
        return None if value is None else _address(value)

    @field_validator("list_unsubscribe", mode="before")
    @classmethod
    def _uris(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            return value  # pydantic says what is wrong with it
        uris = [
            uri.strip().removeprefix("<").removesuffix(">") if isinstance(uri, str) else uri
            for uri in value
        ]
        for uri in uris:
            if isinstance(uri, str) and not _unsubscribe_uri(uri):
                raise ValueError("each must be a mailto: or http(s):// URI, without spaces")
        return tuple(uris) or None

    @property
    def one_click_unsubscribe(self) -> bool:
        """RFC 8058: ``List-Unsubscribe-Post`` goes with an https URI only."""
        return any(uri.startswith("https://") for uri in self.list_unsubscribe or ())


def _unsubscribe_uri(uri: str) -> bool:
    return (
        uri.startswith(_UNSUBSCRIBE_SCHEMES)
        and len(uri) <= 2000
        and not re.search(r"[\s<>,\x00-\x1f\x7f]", uri)
    )
