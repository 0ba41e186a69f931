"""Composition root of the api-gateway: settings, clients, broker, routes, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Self

import httpx
from fastapi import FastAPI
from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import SettingsConfigDict

from clarion_shared import http, kafka, mongo
from clarion_shared.ids import now
from clarion_shared.logging import configure_logging, get_logger
from clarion_shared.settings import DEV_ADMIN_TOKEN, ServiceSettings

from . import domain
from .adapters.kafka import KafkaCommands, SendReplies
from .adapters.mongo import MongoStore
from .adapters.peers import PEERS, Peer, Peers
from .components import Components
from .handlers import routers
from .ports import Commands, Requester, Store
from .services.apps import KeyResolver, ensure_dev_app
from .services.sends import SendSettings

SERVICE = "api-gateway"
log = get_logger(__name__)

DESCRIPTION = """\
The public HTTP edge of Clarion, compatible with the CometChat Campaigns REST API.

Every `/v3` request carries `apikey: <key>` (and optionally `appid`, which must match).
Errors use the envelope `{"error": {"code", "message", "devMessage", "details", "source"}}`;
request validation is 400 `ERR_VALIDATION`. POSTs that create or send accept
`Idempotency-Key`.
"""


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLARION_GATEWAY_", extra="ignore", frozen=True)

    port: int = 8080
    admin_token: str = Field(
        default=DEV_ADMIN_TOKEN,
        validation_alias=AliasChoices(
            "CLARION_GATEWAY_ADMIN_TOKEN", "CLARION_ADMIN_TOKEN", "admin_token"
        ),
        description="Bearer token of /admin; the default is refused in production.",
    )
    dev_app_id: str = Field(
        default="clarion-dev",
        validation_alias=AliasChoices(
            "CLARION_DEV_APP_ID", "CLARION_GATEWAY_DEV_APP_ID", "dev_app_id"
        ),
    )
    dev_api_key: str = Field(
        default="clarion-dev-key",
        validation_alias=AliasChoices(
            "CLARION_DEV_API_KEY", "CLARION_GATEWAY_DEV_API_KEY", "dev_api_key"
        ),
    )
    dispatcher_url: str = "http://127.0.0.1:8081"
    directory_url: str = "http://127.0.0.1:8083"
    webhooks_url: str = "http://127.0.0.1:8082"
    peer_timeout_s: float = Field(default=10.0, gt=0)
    realtime_timeout_s: float = Field(
        default=10.0, gt=0, description="How long a realtime send waits for its result."
    )
    realtime_max_receivers: int = Field(default=10, ge=1)
    batch_max_receivers: int = Field(default=10_000, ge=1)
    batch_chunk_size: int = Field(
        default=500, ge=1, le=5_000, description="Receivers per batch command record."
    )
    key_cache_ttl_s: float = Field(default=30.0, ge=0)
    idempotency_ttl_s: int = Field(default=24 * 3600, ge=1)
    idempotency_lease_s: int = Field(
        default=60,
        ge=1,
        description="A request with an Idempotency-Key that has not answered after this "
        "long is taken as dead (its process crashed): a retry runs it again.",
    )
    reply_fetch_max_wait_ms: int = Field(default=5, ge=0)

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Self:
        if self.environment == "production" and self.admin_token == DEV_ADMIN_TOKEN:
            raise ValueError(
                "CLARION_GATEWAY_ADMIN_TOKEN must be set in production (the default is public)"
            )
        return self


@dataclass(frozen=True)
class Overrides:
    """Replacements for the real adapters, for tests."""

    store: Store | None = None
    commands: Commands | None = None
    requester: Requester | None = None
    peer_transport: httpx.AsyncBaseTransport | None = None


def build(settings: Settings, overrides: Overrides | None = None) -> FastAPI:
    configure_logging(SERVICE, settings.log_level, settings.log_json)
    overrides = overrides or Overrides()
    store: Store = overrides.store or MongoStore(
        mongo.make_client(settings.mongodb_url), settings.db_name
    )
    broker = kafka.make_broker(settings, f"{SERVICE}-{settings.instance_id}")
    uses_broker = overrides.commands is None
    commands: Commands = overrides.commands or KafkaCommands(broker)
    requester: Requester = overrides.requester or SendReplies(
        settings.kafka_bootstrap_servers, settings.reply_fetch_max_wait_ms
    )
    peer_urls: dict[Peer, str] = {
        "dispatcher": settings.dispatcher_url,
        "directory": settings.directory_url,
        "webhooks": settings.webhooks_url,
    }
    peers = Peers(
        httpx.AsyncClient(
            transport=overrides.peer_transport,
            timeout=httpx.Timeout(settings.peer_timeout_s, connect=3.0),
            follow_redirects=False,
        ),
        peer_urls,
    )
    components = Components(
        apps=store.apps,
        channels=store.channels,
        templates=store.templates,
        idempotency=store.idempotency,
        keys=KeyResolver(store.apps, ttl_s=settings.key_cache_ttl_s),
        commands=commands,
        requester=requester,
        peers=peers,
        admin_token=settings.admin_token,
        send=SendSettings(
            limits=domain.SendLimits(
                realtime_max=settings.realtime_max_receivers,
                batch_max=settings.batch_max_receivers,
                chunk_size=settings.batch_chunk_size,
            ),
            realtime_timeout_s=settings.realtime_timeout_s,
        ),
        idempotency_ttl_s=settings.idempotency_ttl_s,
        idempotency_lease_s=settings.idempotency_lease_s,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await store.ensure_indexes()
        if settings.environment == "dev":
            await ensure_dev_app(store.apps, settings.dev_app_id, settings.dev_api_key, now())
        if uses_broker:
            await broker.start()
        try:
            # Positions on the reply topic are fixed before the first request can come.
            await requester.start()
            log.info("gateway.started", db=settings.db_name, environment=settings.environment)
            try:
                yield
            finally:
                await requester.stop()
        finally:
            if uses_broker:
                await broker.stop()
            await peers.aclose()
            await store.close()
            log.info("gateway.stopped")

    app = http.create_app(SERVICE, "Clarion API", lifespan, description=DESCRIPTION)
    for router in routers():
        app.include_router(router)
    app.state.components = components
    app.state.broker = broker

    async def no_broker() -> bool:
        return True

    async def replies_ready() -> bool:
        return requester.ready

    app.state.readiness = {
        "mongo": store.ping,
        "kafka": kafka.readiness(broker) if uses_broker else no_broker,
        "replies": replies_ready,
        **{peer: _peer_check(peers, peer) for peer in PEERS},
    }
    return app


def _peer_check(peers: Peers, peer: Peer) -> http.ReadinessCheck:
    async def check() -> bool:
        return await peers.ready(peer)

    return check
