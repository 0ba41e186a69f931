"""Webhook endpoints: what a valid one is, how it changes, its configuration for the
emitter. Pure rules, no I/O.

``updated_at`` is in Unix milliseconds and grows with every change of an endpoint
(``next_version``): the webhook-emitter keeps the newest configuration it has seen, and
ignores a state change (disabled after failures) made for an older one. The API shows
it in seconds, as every timestamp.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import TypeVar
from urllib.parse import urlsplit

from clarion_shared.contracts.config_webhooks import TRIGGERS, WebhookConfig
from clarion_shared.contracts.webhook_state import WebhookDisabled
from clarion_shared.errors import Conflict, Invalid, NotFound

T = TypeVar("T")

MAX_WEBHOOKS_PER_APP = 25
URL_MAX_LENGTH = 2048
CREDENTIAL_MAX_LENGTH = 256
# Names of cloud metadata services, refused as their addresses are.
_METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog"})


@dataclass(frozen=True)
class Webhook:
    app_id: str
    webhook_id: str
    name: str
    url: str
    triggers: tuple[str, ...]
    enabled: bool
    signing_secret: str
    created_at: int  # Unix seconds
    updated_at: int  # Unix milliseconds (see the module's docstring)
    use_basic_auth: bool = False
    username: str | None = None
    password: str | None = None
    # The secret before the last rotation, still signing until it expires (Unix ms).
    previous_signing_secret: str | None = None
    previous_secret_expires_at: int | None = None
    disabled_reason: str | None = None  # why the emitter disabled it, when it did

    @property
    def key(self) -> str:
        return f"{self.app_id}:{self.webhook_id}"


@dataclass(frozen=True)
class Tombstone:
    """A deleted webhook whose deletion the emitter has not been told yet."""

    app_id: str
    webhook_id: str
    updated_at: int

    @property
    def key(self) -> str:
        return f"{self.app_id}:{self.webhook_id}"


Version = Webhook | Tombstone
"""What is stored under a webhook's key: the endpoint, or its deletion."""


@dataclass(frozen=True)
class NewWebhook:
    name: str
    url: str
    triggers: Sequence[str]
    enabled: bool = True
    use_basic_auth: bool = False
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class WebhookChanges:
    """What an update changes (None: kept); ``rotate_secret``: a new signing secret."""

    name: str | None = None
    url: str | None = None
    triggers: Sequence[str] | None = None
    enabled: bool | None = None
    use_basic_auth: bool | None = None
    username: str | None = None
    password: str | None = None
    rotate_secret: bool = False


class WebhookNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Webhook")


class TooManyWebhooks(Conflict):
    def __init__(self) -> None:
        super().__init__(
            f"This app has {MAX_WEBHOOKS_PER_APP} webhooks already, the most it can have; "
            "delete one first.",
            details={"limit": MAX_WEBHOOKS_PER_APP},
        )


class WebhookBusy(Conflict):
    """Changed by others at every attempt: the client sends its change again."""

    def __init__(self) -> None:
        super().__init__("The webhook is being changed by another request; try again.")


def _refuse(field: str, message: str) -> Invalid:
    return Invalid(f"{field} {message}.", details=[{"field": field, "message": message}])


def next_version(previous_ms: int, now_ms: int) -> int:
    """The ``updated_at`` of a change: now, and always after the previous one."""
    return max(now_ms, previous_ms + 1)


def _literal_address(host: str) -> IPv4Address | IPv6Address | None:
    """The address a host names by itself: an IP literal, or an IPv4 address in a form
    resolvers accept (``127.1``, ``2130706433``, ``0x7f.0.0.1``)."""
    try:
        return ip_address(host)
    except ValueError:
        pass
    try:
        return IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def private_host(host: str) -> bool:
    """Whether ``host`` names, by itself, an address that is not public: loopback,
    private, link-local (cloud metadata), shared, reserved, unspecified or multicast.
    A name is only known at delivery time, when the emitter resolves and checks it."""
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost") or name in _METADATA_HOSTS:
        return True
    address = _literal_address(name)
    if address is None:
        return False
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def check_url(url: str, allow_private: bool, field: str = "webhookURL") -> str:
    """An absolute https URL (http too when private addresses are allowed, for local
    receivers) without credentials, whose host is not a private address by itself.
    ``field`` names the URL in the refusal (channels check their provider URLs here)."""
    if len(url) > URL_MAX_LENGTH:
        raise _refuse(field, f"is longer than {URL_MAX_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise _refuse(field, "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when out of range
    except ValueError as exc:
        raise _refuse(field, "is not a valid URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise _refuse(field, "must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise _refuse(field, "must not hold credentials (use useBasicAuth)")
    if _literal_address(parts.hostname) is None:
        try:
            parts.hostname.encode("idna")
        except UnicodeError as exc:
            raise _refuse(field, "has an invalid host name") from exc
    if scheme == "http" and not allow_private:
        raise _refuse(field, "must be an https URL")
    if not allow_private and private_host(parts.hostname):
        raise _refuse(field, "must not name a loopback, private, link-local or reserved address")
    return url


def check_triggers(triggers: Sequence[str]) -> tuple[str, ...]:
    """API.md's triggers, each once, in the order given."""
    known = ", ".join(TRIGGERS)
    if not triggers:
        raise _refuse("triggers", f"needs at least one of {known}")
    unknown = [(i, t) for i, t in enumerate(triggers) if t not in TRIGGERS]
    if unknown:
        raise Invalid(
            f"Unknown trigger {unknown[0][1]!r}.",
            details=[{"field": f"triggers.{i}", "message": f"one of {known}"} for i, _ in unknown],
        )
    return tuple(dict.fromkeys(triggers))


def check_basic_auth(use: bool, username: str | None, password: str | None) -> None:
    """Basic Auth needs a username (without ``:``, RFC 7617) and a password."""
    if username is not None and ":" in username:
        raise _refuse("username", "must not contain ':'")
    if not use:
        return
    if not username:
        raise _refuse("username", "is required with useBasicAuth")
    if not password:
        raise _refuse("password", "is required with useBasicAuth")


def new_webhook(
    app_id: str,
    webhook_id: str,
    new: NewWebhook,
    secret: str,
    now_ms: int,
    allow_private: bool,
) -> Webhook:
    check_basic_auth(new.use_basic_auth, new.username, new.password)
    return Webhook(
        app_id=app_id,
        webhook_id=webhook_id,
        name=new.name,
        url=check_url(new.url, allow_private),
        triggers=check_triggers(new.triggers),
        enabled=new.enabled,
        signing_secret=secret,
        created_at=now_ms // 1000,
        updated_at=now_ms,
        use_basic_auth=new.use_basic_auth,
        username=new.username,
        password=new.password,
    )


def changed(
    current: Webhook,
    changes: WebhookChanges,
    now_ms: int,
    allow_private: bool,
    new_secret: str,
    overlap_ms: int,
) -> Webhook:
    """``current`` with ``changes``; ``new_secret`` replaces the signing secret when
    ``changes`` rotates it, and the old one keeps signing for ``overlap_ms``. Enabling
    an endpoint clears why it was disabled."""
    use_basic_auth = _given(changes.use_basic_auth, current.use_basic_auth)
    username = _given(changes.username, current.username)
    password = _given(changes.password, current.password)
    check_basic_auth(use_basic_auth, username, password)
    updated = replace(
        current,
        name=_given(changes.name, current.name),
        url=check_url(changes.url, allow_private) if changes.url is not None else current.url,
        triggers=(
            check_triggers(changes.triggers) if changes.triggers is not None else current.triggers
        ),
        enabled=_given(changes.enabled, current.enabled),
        use_basic_auth=use_basic_auth,
        username=username,
        password=password,
        updated_at=next_version(current.updated_at, now_ms),
    )
    if changes.enabled:
        updated = replace(updated, disabled_reason=None)
    if changes.rotate_secret:
        return replace(
            updated,
            signing_secret=new_secret,
            previous_signing_secret=current.signing_secret,
            previous_secret_expires_at=now_ms + overlap_ms,
        )
    expires = current.previous_secret_expires_at
    if expires is not None and expires <= now_ms:  # the rotation is over: forget it
        updated = replace(updated, previous_signing_secret=None, previous_secret_expires_at=None)
    return updated


def _given(value: T | None, current: T) -> T:
    return current if value is None else value


def disabled(current: Webhook, event: WebhookDisabled, now_ms: int) -> Webhook | None:
    """The endpoint disabled as the emitter decided; None when there is nothing to do:
    it is disabled already, or it changed after the configuration the emitter judged
    (the operator's change wins)."""
    if not current.enabled or current.updated_at > event.config_updated_at:
        return None
    return replace(
        current,
        enabled=False,
        disabled_reason=f"{event.reason}: {event.detail}",
        updated_at=next_version(current.updated_at, now_ms),
    )


def config_of(webhook: Webhook) -> WebhookConfig:
    """The configuration the emitter reads (secrets and password included: the topic is
    internal and access-controlled like the database)."""
    return WebhookConfig(
        app_id=webhook.app_id,
        webhook_id=webhook.webhook_id,
        name=webhook.name,
        url=webhook.url,
        triggers=list(webhook.triggers),
        enabled=webhook.enabled,
        signing_secret=webhook.signing_secret,
        previous_signing_secret=webhook.previous_signing_secret,
        previous_secret_expires_at=webhook.previous_secret_expires_at,
        use_basic_auth=webhook.use_basic_auth,
        username=webhook.username,
        password=webhook.password,
        disabled_reason=webhook.disabled_reason,
        updated_at=webhook.updated_at,
    )
