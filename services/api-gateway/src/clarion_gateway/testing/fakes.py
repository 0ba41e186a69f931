"""In-memory stand-ins for every port, with the behaviour of the real adapters.

The unit tests run the use cases and the HTTP routes on these; the repository suite
(``tests/test_gateway_repositories.py``) runs against both these and Mongo, so they
cannot drift apart. Each fake is a ``Resource`` whose start and stop do nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from clarion_shared.contracts.config_channels import ChannelConfig
from clarion_shared.contracts.replies import SendResult
from clarion_shared.contracts.sends import SendNotification
from clarion_shared.ids import new_id
from clarion_shared.public.batches import BatchRegistration

from ..apps.domain import App
from ..authoring.cache import AuthoringCache
from ..categories.domain import AppCategories
from ..channels.domain import Channel
from ..idempotency.domain import IdempotencyRecord, StoredResponse
from ..kafka import publishing
from ..sends.service import RegistrationFailed
from ..templates.domain import Template
from .campaigns import (
    MemoryAudienceLocks,
    MemoryCampaigns,
    MemoryCampaignTracking,
    MemoryRecipients,
)
from .operators import MemoryAuditLog, MemoryLoginAttempts, MemoryOperators, MemorySessions
from .webhooks import MemoryWebhooks


class NoLifecycle:
    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class FakeConnection(NoLifecycle):
    """A database or broker connection that is always there."""

    async def ready(self) -> bool:
        return True


class MemoryApps(NoLifecycle):
    def __init__(self, channels: MemoryChannels | None = None) -> None:
        self.apps: dict[str, App] = {}
        self.keys: dict[str, str] = {}
        self.slots: dict[tuple[str, str], str] = {}
        self.channels = channels  # to see whether a slot holder exists

    async def insert(self, app: App, key_hash: str) -> bool:
        if app.app_id in self.apps or key_hash in self.keys:
            return False
        self.apps[app.app_id] = app
        self.keys[key_hash] = app.app_id
        return True

    async def ensure(self, app: App, key_hash: str) -> None:
        self.apps.setdefault(app.app_id, app)
        self.keys.setdefault(key_hash, app.app_id)

    async def app_of_key(self, key_hash: str) -> str | None:
        return self.keys.get(key_hash)

    async def get(self, app_id: str) -> App | None:
        return self.apps.get(app_id)

    async def list_all(self) -> list[App]:
        return list(self.apps.values())

    async def claim_channel_slot(self, app_id: str, channel_type: str, channel_id: str) -> bool:
        holder = self.slots.get((app_id, channel_type))
        if holder is not None and holder != channel_id:
            exists = self.channels is not None and (app_id, holder) in self.channels.items
            if exists:
                return False
        self.slots[(app_id, channel_type)] = channel_id
        return True

    async def release_channel_slot(self, app_id: str, channel_type: str, channel_id: str) -> None:
        if self.slots.get((app_id, channel_type)) == channel_id:
            del self.slots[(app_id, channel_type)]


class MemoryChannels(NoLifecycle):
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Channel] = {}

    async def insert(self, channel: Channel) -> bool:
        key = (channel.app_id, channel.channel_id)
        if key in self.items:
            return False
        self.items[key] = channel
        return True

    async def get(self, app_id: str, channel_id: str) -> Channel | None:
        return self.items.get((app_id, channel_id))

    async def exists(self, app_id: str, channel_id: str) -> bool:
        return (app_id, channel_id) in self.items

    async def list_for_app(self, app_id: str) -> list[Channel]:
        return [c for (a, _), c in self.items.items() if a == app_id]

    async def of_type(self, app_id: str, channel_type: str) -> list[Channel]:
        return [c for c in await self.list_for_app(app_id) if c.type == channel_type]

    async def replace(self, channel: Channel) -> None:
        self.items[(channel.app_id, channel.channel_id)] = channel


class MemoryTemplates(NoLifecycle):
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Template] = {}

    async def insert(self, template: Template) -> bool:
        key = (template.app_id, template.template_id)
        if key in self.items:
            return False
        self.items[key] = template
        return True

    async def get(self, app_id: str, template_id: str) -> Template | None:
        return self.items.get((app_id, template_id))

    async def list_for_app(self, app_id: str) -> list[Template]:
        return [t for (a, _), t in self.items.items() if a == app_id]

    async def replace(self, template: Template) -> bool:
        key = (template.app_id, template.template_id)
        current = self.items.get(key)
        if current is None or current.revision != template.revision:
            return False
        self.items[key] = replace(template, revision=template.revision + 1)
        return True


class MemoryCategories(NoLifecycle):
    def __init__(self) -> None:
        self.items: dict[str, AppCategories] = {}

    async def get(self, app_id: str) -> AppCategories | None:
        return self.items.get(app_id)

    async def insert(self, categories: AppCategories) -> bool:
        if categories.app_id in self.items:
            return False
        self.items[categories.app_id] = categories
        return True

    async def replace(self, categories: AppCategories) -> bool:
        current = self.items.get(categories.app_id)
        if current is None or current.revision != categories.revision:
            return False
        self.items[categories.app_id] = replace(categories, revision=categories.revision + 1)
        return True


class MemoryIdempotency(NoLifecycle):
    def __init__(self) -> None:
        self.items: dict[str, IdempotencyRecord] = {}
        self.expires: dict[str, int] = {}

    async def begin(
        self, scope_key: str, fingerprint: str, now: int, ttl_s: int, lease_s: int
    ) -> IdempotencyRecord | None:
        record = self.items.get(scope_key)
        if record is not None and self.expires[scope_key] > now:
            abandoned = record.response is None and record.created_at + lease_s <= now
            if not abandoned:
                return record
        self.items[scope_key] = IdempotencyRecord(fingerprint, now, None)
        self.expires[scope_key] = now + ttl_s
        return None

    async def finish(self, scope_key: str, response: StoredResponse) -> None:
        record = self.items[scope_key]
        self.items[scope_key] = replace(record, response=response)

    async def release(self, scope_key: str) -> None:
        self.items.pop(scope_key, None)
        self.expires.pop(scope_key, None)


class MemoryStore:
    """The repositories of one database, wired like the Mongo ones."""

    def __init__(self) -> None:
        self.campaigns = MemoryCampaigns()
        self.recipients = MemoryRecipients()
        self.campaign_tracking = MemoryCampaignTracking()
        self.audience_locks = MemoryAudienceLocks()
        self.channels = MemoryChannels()
        self.apps = MemoryApps(self.channels)
        self.templates = MemoryTemplates()
        self.categories = MemoryCategories()
        self.idempotency = MemoryIdempotency()
        self.webhooks = MemoryWebhooks()
        self.operators = MemoryOperators()
        self.sessions = MemorySessions()
        self.login_attempts = MemoryLoginAttempts()
        self.audit = MemoryAuditLog()


class RecordingCommands:
    """Keeps what would be published, in order (sends and channel configurations).

    ``fail_with`` makes every publish raise it, as the Kafka adapters would: a broker
    error (``KafkaConnectionError``, say) becomes ``PublishFailed``.
    """

    def __init__(self) -> None:
        self.sends: list[SendNotification] = []
        self.attempted: list[SendNotification] = []  # failed publishes too
        self.configs: list[ChannelConfig] = []
        self.fail_with: Exception | None = None

    def _fail(self) -> None:
        with publishing():
            if self.fail_with is not None:
                raise self.fail_with

    async def send(self, command: SendNotification) -> None:
        self._fail()
        self.sends.append(command)

    async def send_chunks(self, commands: Sequence[SendNotification]) -> None:
        self.attempted.extend(commands)
        self._fail()
        self.sends.extend(commands)

    async def channel_config(self, config: ChannelConfig) -> None:
        self._fail()
        self.configs.append(config)


class MemoryAnnouncer:
    """``authoring.service.Announcer`` in one process: ``announced`` keeps the app ids in
    order; the cache opens at start, as the Kafka one's does once its reader is placed.
    ``fail_with`` makes every announcement raise it (as ``PublishFailed``)."""

    def __init__(self, cache: AuthoringCache) -> None:
        self.cache = cache
        self.announced: list[str] = []
        self.fail_with: Exception | None = None

    async def start(self) -> None:
        self.cache.open()

    async def stop(self) -> None:
        self.cache.close()

    async def ready(self) -> bool:
        return True

    async def announce(self, app_id: str) -> None:
        with publishing():
            if self.fail_with is not None:
                raise self.fail_with
        self.announced.append(app_id)


class MemoryBatchRegistry(NoLifecycle):
    """The dispatcher's batch registry: ``registered[(app_id, batch_id)]`` keeps the
    first registration (a repeat is a no-op, as there); ``unreachable`` fails every
    registration as an unreachable dispatcher does."""

    def __init__(self) -> None:
        self.registered: dict[tuple[str, str], BatchRegistration] = {}
        self.calls = 0
        self.unreachable = False

    async def register(self, app_id: str, batch_id: str, batch: BatchRegistration) -> None:
        self.calls += 1
        if self.unreachable:
            raise RegistrationFailed("dispatcher: connection refused")
        self.registered.setdefault((app_id, batch_id), batch)


Responder = Callable[[SendNotification], Awaitable[SendResult | None]]


class FakeRequester:
    """A requester whose "dispatcher" is a function of the published command.

    ``respond`` gets the command ``send`` published (through ``commands``) and returns
    the reply, or None for no reply (the request then times out).
    """

    def __init__(self, commands: RecordingCommands, respond: Responder) -> None:
        self.ready = False
        self._commands = commands
        self._respond = respond

    async def start(self) -> None:
        self.ready = True

    async def stop(self) -> None:
        self.ready = False

    async def request(self, send: Callable[[str], Awaitable[None]], timeout_s: float) -> SendResult:
        request_id = new_id("req_")
        await send(request_id)
        reply = await self._respond(self._commands.sends[-1])
        if reply is None:
            await asyncio.sleep(timeout_s)
            raise TimeoutError(request_id)
        return reply.model_copy(update={"request_id": request_id})
