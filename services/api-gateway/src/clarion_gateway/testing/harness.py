"""The whole gateway HTTP app on in-memory fakes (``gateway_harness``).

Used by this service's tests and by anyone who wants a gateway without infrastructure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from clarion_shared.contracts.replies import ReceiverResult, SendResult
from clarion_shared.contracts.sends import SendNotification
from clarion_shared.settings import DEV_ADMIN_TOKEN
from clarion_shared.topics import Topics

from ..app import Adapters, Settings, compose
from ..authoring.cache import AuthoringCache
from ..live.hub import LiveHub
from ..proxies.peers import Peers
from .campaigns import MemoryCampaignEvents, MemoryDirectory, MemoryFinishedPublisher
from .channels import provider_settings
from .fakes import (
    FakeConnection,
    FakeRequester,
    MemoryAnnouncer,
    MemoryBatchRegistry,
    MemoryStore,
    RecordingCommands,
)
from .imports import MemoryImportStorage
from .webhooks import MemoryWebhookStates, RecordingWebhookConfigs

DEV_KEY = "clarion-dev-key"
DEV_APP = "clarion-dev"
ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
AUTH = {"apikey": DEV_KEY}


def all_sent(command: SendNotification) -> SendResult:
    return SendResult(
        request_id="-",
        send_id=command.send_id,
        receivers=[ReceiverResult(uid=uid, status="sent") for uid in command.receivers],
    )


def peer_not_found(request: httpx.Request) -> httpx.Response:
    return httpx.Response(404, json={"error": {"code": "ERR_NOT_FOUND"}})


def make_settings(**values: Any) -> Settings:
    values.setdefault("realtime_timeout_s", 0.2)
    values.setdefault("environment", "dev")
    return Settings(**values)


def fake_adapters(
    settings: Settings,
    store: MemoryStore,
    commands: RecordingCommands,
    requester: FakeRequester,
    peer_transport: httpx.AsyncBaseTransport | None = None,
    registry: MemoryBatchRegistry | None = None,
    authoring: MemoryAnnouncer | None = None,
    directory: MemoryDirectory | None = None,
    campaign_events: MemoryCampaignEvents | None = None,
    csv_imports: MemoryImportStorage | None = None,
    webhook_configs: RecordingWebhookConfigs | None = None,
    webhook_states: MemoryWebhookStates | None = None,
    campaign_finished: MemoryFinishedPublisher | None = None,
) -> Adapters:
    """Every adapter a fake; the peers are the real client on ``peer_transport``."""
    return Adapters(
        database=FakeConnection(),
        apps=store.apps,
        channels=store.channels,
        templates=store.templates,
        categories=store.categories,
        idempotency=store.idempotency,
        broker=FakeConnection(),
        sends=commands,
        batches=registry or MemoryBatchRegistry(),
        configs=commands,
        replies=requester,
        peers=Peers.connect(
            settings.peer_urls(),
            settings.peer_timeout_s,
            peer_transport,
            internal_token=settings.internal_token,
        ),
        authoring=authoring
        or MemoryAnnouncer(
            AuthoringCache(settings.authoring_cache_size, settings.authoring_cache_ttl_s)
        ),
        campaigns=store.campaigns,
        recipients=store.recipients,
        audience_locks=store.audience_locks,
        directory=directory or MemoryDirectory(),
        campaign_events=campaign_events or MemoryCampaignEvents(),
        campaign_finished=campaign_finished or MemoryFinishedPublisher(),
        campaign_tracking=store.campaign_tracking,
        csv_imports=(csv_imports or MemoryImportStorage()).storage(),
        webhooks=store.webhooks,
        webhook_configs=webhook_configs or RecordingWebhookConfigs(),
        webhook_states=webhook_states or MemoryWebhookStates(),
        live=LiveHub(),
        live_tail=FakeConnection(),
        operators=store.operators,
        sessions=store.sessions,
        login_attempts=store.login_attempts,
        audit=store.audit,
    )


@dataclass
class Harness:
    app: FastAPI
    client: httpx.AsyncClient
    store: MemoryStore
    commands: RecordingCommands
    topics: Topics = field(default_factory=Topics)
    # The dispatcher's batch registry (a batch is registered before it is published).
    registry: MemoryBatchRegistry = field(default_factory=MemoryBatchRegistry)
    # What the fake dispatcher answers a realtime send with (None: no answer).
    reply: Callable[[SendNotification], SendResult | None] = all_sent
    # What the fake peers answer (every internal HTTP request lands here).
    peer: Callable[[httpx.Request], httpx.Response] = peer_not_found
    peer_requests: list[httpx.Request] = field(default_factory=list)
    # The user-directory's internal API as campaigns see it.
    directory: MemoryDirectory = field(default_factory=MemoryDirectory)
    # Status events for campaign progress: ``await harness.campaign_events.deliver(...)``.
    campaign_events: MemoryCampaignEvents = field(default_factory=MemoryCampaignEvents)
    # Upload keys, uploaded files and CSV imports.
    csv_imports: MemoryImportStorage = field(default_factory=MemoryImportStorage)
    # The announcements of template and channel writes, and the send path's cache.
    authoring: MemoryAnnouncer = field(
        default_factory=lambda: MemoryAnnouncer(AuthoringCache(0, 1.0))
    )
    # Webhook configurations published, and the emitter's endpoint state changes.
    webhook_configs: RecordingWebhookConfigs = field(default_factory=RecordingWebhookConfigs)
    webhook_states: MemoryWebhookStates = field(default_factory=MemoryWebhookStates)
    # The campaigns announced final on clarion.status.
    campaign_finished: MemoryFinishedPublisher = field(default_factory=MemoryFinishedPublisher)

    async def create_channel(self, **body: Any) -> dict[str, Any]:
        """An enabled in-app channel unless told otherwise; another type gets settings
        that pass (``testing.channels``) unless ``metadata`` is given."""
        body.setdefault("name", "In-app")
        body.setdefault("type", "in_app")
        body.setdefault("enabled", True)
        body.setdefault("metadata", provider_settings(body["type"]))
        response = await self.client.post("/v3/campaigns/channels", json=body, headers=AUTH)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    async def create_template(self, approve: bool = True, **body: Any) -> dict[str, Any]:
        body.setdefault("name", "Order update")
        body.setdefault(
            "channels",
            [{"channelType": "in_app", "content": {"title": "Hi {{name}}", "body": "Order"}}],
        )
        body.setdefault("variableSchema", [{"key": "name", "type": "string"}])
        response = await self.client.post("/v3/campaigns/templates", json=body, headers=AUTH)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        if approve:
            response = await self.client.put(
                f"/v3/campaigns/templates/{data['templateId']}",
                json={"status": "approved"},
                headers=AUTH,
            )
            assert response.status_code == 200, response.text
            data = response.json()["data"]
        return data


@asynccontextmanager
async def gateway_harness(  # long: every fake the composition root takes, wired once
    settings: Settings | None = None,
) -> AsyncIterator[Harness]:
    """The app built by ``compose`` on fakes, started, with a client on it."""
    settings = settings or make_settings()
    store = MemoryStore()
    commands = RecordingCommands()
    holder: list[Harness] = []

    async def respond(command: SendNotification) -> SendResult | None:
        return holder[0].reply(command)

    def peer(request: httpx.Request) -> httpx.Response:
        holder[0].peer_requests.append(request)
        return holder[0].peer(request)

    registry = MemoryBatchRegistry()
    authoring = MemoryAnnouncer(
        AuthoringCache(settings.authoring_cache_size, settings.authoring_cache_ttl_s)
    )
    directory = MemoryDirectory()
    campaign_events = MemoryCampaignEvents()
    csv_imports = MemoryImportStorage()
    webhook_configs = RecordingWebhookConfigs()
    webhook_states = MemoryWebhookStates()
    campaign_finished = MemoryFinishedPublisher()
    adapters = fake_adapters(
        settings,
        store,
        commands,
        FakeRequester(commands, respond),
        httpx.MockTransport(peer),
        registry,
        authoring,
        directory,
        campaign_events,
        csv_imports,
        webhook_configs,
        webhook_states,
        campaign_finished,
    )
    app = compose(settings, adapters)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client,
    ):
        holder.append(
            Harness(
                app,
                client,
                store,
                commands,
                Topics(settings.topic_prefix),
                registry,
                directory=directory,
                campaign_events=campaign_events,
                csv_imports=csv_imports,
                authoring=authoring,
                webhook_configs=webhook_configs,
                webhook_states=webhook_states,
                campaign_finished=campaign_finished,
            )
        )
        yield holder[0]
