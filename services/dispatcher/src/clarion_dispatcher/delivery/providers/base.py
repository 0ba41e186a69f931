"""The one interface every provider client has, and what a send can come to.

A client is built from a channel's configuration (``ChannelConfig.metadata``, API.md
Channels) and reused for every job of that channel until the configuration changes
(``close`` then releases its connections). ``send`` never raises for what the provider
answers: it classifies the answer into an ``Outcome``:

- ``Sent``: the provider accepted the message (its id when it gives one);
- ``Retry``: a transient failure (a 429 or 5xx, a timeout, a refused connection, an
  SMTP 4xx), to try again later, after ``retry_after_s`` when the provider said so;
- ``Failed``: a permanent failure (a 4xx that will not change, an SMTP 5xx, a contact
  point the provider rejects), never retried.

Every outcome carries ``invalid_tokens``: push tokens the provider reported invalid or
unregistered on the way, to be removed from the user whatever became of the message.

Each ``Outbound`` carries ``idempotency_key`` (the job's derived id): a client passes it
to the provider where the provider has such a key, and uses it where a message id is
chosen by the sender (an email's ``Message-ID``), so a job sent twice is recognisable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from clarion_shared.contracts.base import JsonObject

# Codes of failures (``Failed.code`` / ``Retry.code``) that are not a provider's own.
ERR_NO_CONTACT_POINT = "ERR_NO_CONTACT_POINT"  # the user has no address for the channel
ERR_INVALID_CONTACT_POINT = "ERR_INVALID_CONTACT_POINT"  # e.g. not E.164, not an email
ERR_CHANNEL_CONFIG = "ERR_CHANNEL_CONFIG"  # the channel's settings cannot work
ERR_PROVIDER_REJECTED = "ERR_PROVIDER_REJECTED"  # a permanent refusal by the provider
ERR_PROVIDER_UNAVAILABLE = "ERR_PROVIDER_UNAVAILABLE"  # transient: 5xx, 429, timeout
ERR_INVALID_PUSH_TOKEN = "ERR_INVALID_PUSH_TOKEN"  # every token was invalid/unregistered
ERR_INVALID_CONTENT = "ERR_INVALID_CONTENT"  # the rendered content cannot go on the channel


@dataclass(frozen=True)
class Outbound:
    """One delivery: a job's rendered content for one user on one channel."""

    idempotency_key: str  # the job's derived id (send, uid, channel)
    app_id: str
    send_id: str
    uid: str
    channel_id: str
    content: JsonObject  # rendered: e.g. {subject, text, html} for email
    contact: JsonObject  # the user's contact points: email, contactNumber, pushTokens
    variables: JsonObject = field(default_factory=dict)  # for custom channels' bodies


@dataclass(frozen=True)
class Sent:
    provider_id: str | None = None  # the provider's message id, when it gives one
    detail: JsonObject = field(default_factory=dict)  # e.g. per push token results
    invalid_tokens: tuple[str, ...] = ()


@dataclass(frozen=True)
class Retry:
    code: str
    message: str
    retry_after_s: float | None = None  # the provider's Retry-After, when it sent one
    invalid_tokens: tuple[str, ...] = ()


@dataclass(frozen=True)
class Failed:
    code: str
    message: str
    invalid_tokens: tuple[str, ...] = ()


Outcome = Sent | Retry | Failed


class Provider(Protocol):
    """A provider client for one channel configuration."""

    async def send(self, outbound: Outbound) -> Outcome: ...

    async def close(self) -> None:
        """Release connections (the configuration changed or the worker stops)."""
        ...


Commit = Callable[[], Awaitable[bool]]
"""Called by a two-phase provider when the message is written and only its final step
is left (an SMTP message without its ending dot): True to go on, False to abandon it
(another copy of the job holds this attempt; nothing is delivered)."""


@dataclass(frozen=True)
class Superseded:
    """The commit said no: the message was abandoned before the provider took it."""


@runtime_checkable
class TwoPhaseProvider(Provider, Protocol):
    """A provider whose send can stop just before the provider takes the message, so
    the worker can note "handing over now" (``Commit``) in the one moment from which
    the provider may have it: a worker killed before the note is known not to have sent it."""

    async def send_committed(self, outbound: Outbound, commit: Commit) -> Outcome | Superseded: ...


class ConfigError(ValueError):
    """A channel's metadata cannot build a client: said in words (the gateway checks
    the same rules when the channel is written, so this is a stale or foreign config)."""
