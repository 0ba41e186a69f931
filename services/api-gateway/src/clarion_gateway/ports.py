"""What the use cases need from the outside world, as protocols.

The Mongo repositories, the Kafka publisher and the reply requester implement these;
so do the in-memory fakes in ``adapters.memory`` that the unit tests pass instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from clarion_shared.contracts.config_channels import ChannelConfig
from clarion_shared.contracts.replies import SendResult
from clarion_shared.contracts.sends import ChannelType, SendNotification

from .domain import App, Channel, Template


class AppRepository(Protocol):
    async def insert(self, app: App, key_hash: str) -> bool:
        """Create the app and its key; False when the app id or the key is taken."""
        ...

    async def ensure(self, app: App, key_hash: str) -> None:
        """Create the app and bind the key to it if missing (idempotent)."""
        ...

    async def app_of_key(self, key_hash: str) -> str | None: ...

    async def claim_channel_slot(self, app_id: str, channel_type: str, channel_id: str) -> bool:
        """Reserve the app's only channel of a limited type (push) for ``channel_id``.

        False when another channel that still exists holds it.
        """
        ...

    async def release_channel_slot(
        self, app_id: str, channel_type: str, channel_id: str
    ) -> None: ...


class ChannelRepository(Protocol):
    async def insert(self, channel: Channel) -> bool:
        """False when the channel id is taken in the app."""
        ...

    async def get(self, app_id: str, channel_id: str) -> Channel | None: ...

    async def list_for_app(self, app_id: str) -> list[Channel]: ...

    async def of_type(self, app_id: str, channel_type: ChannelType) -> list[Channel]: ...

    async def replace(self, channel: Channel) -> None: ...


class TemplateRepository(Protocol):
    async def insert(self, template: Template) -> bool:
        """False when the template id is taken in the app."""
        ...

    async def get(self, app_id: str, template_id: str) -> Template | None: ...

    async def list_for_app(self, app_id: str) -> list[Template]: ...

    async def replace(self, template: Template) -> bool:
        """Save ``template`` unless someone saved it since it was read (its
        ``revision`` moved); the stored revision goes up by one."""
        ...


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes


@dataclass(frozen=True)
class IdempotencyRecord:
    fingerprint: str
    created_at: int
    response: StoredResponse | None  # None while the first request runs


class IdempotencyRepository(Protocol):
    async def begin(
        self, scope_key: str, fingerprint: str, now: int, ttl_s: int, lease_s: int
    ) -> IdempotencyRecord | None:
        """Claim the key (None) or return the live record that already holds it.

        A record expires ``ttl_s`` after its claim. A claim still without a response
        ``lease_s`` after it was made is abandoned (its process died mid-request) and
        is taken over too.
        """
        ...

    async def finish(self, scope_key: str, response: StoredResponse) -> None: ...

    async def release(self, scope_key: str) -> None: ...


class Store(Protocol):
    """The repositories on one database, and its lifecycle."""

    @property
    def apps(self) -> AppRepository: ...

    @property
    def channels(self) -> ChannelRepository: ...

    @property
    def templates(self) -> TemplateRepository: ...

    @property
    def idempotency(self) -> IdempotencyRepository: ...

    async def ping(self) -> bool: ...

    async def ensure_indexes(self) -> None: ...

    async def close(self) -> None: ...


class Commands(Protocol):
    """Kafka commands and configuration the gateway publishes."""

    async def send(self, command: SendNotification) -> None: ...

    async def send_chunks(self, commands: Sequence[SendNotification]) -> None: ...

    async def channel_config(self, config: ChannelConfig) -> None: ...


class Requester(Protocol):
    """Request/reply over Kafka (``clarion_shared.rpc.KafkaRequester``)."""

    @property
    def ready(self) -> bool: ...

    async def start(self, timeout_s: float = 30.0) -> None: ...

    async def stop(self) -> None: ...

    async def request(
        self, send: Callable[[str], Awaitable[None]], timeout_s: float
    ) -> SendResult: ...
