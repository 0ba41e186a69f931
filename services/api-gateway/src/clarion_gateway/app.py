"""Composition root of the api-gateway: Settings, Adapters, compose(), build()."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from fastapi import APIRouter, FastAPI
from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import SettingsConfigDict

from clarion_shared import http, kafka, mongo
from clarion_shared.http import ReadinessCheck
from clarion_shared.ids import now
from clarion_shared.lifecycle import Connection, Resource, lifespan, on_start
from clarion_shared.settings import DEV_ADMIN_TOKEN, ServiceSettings
from clarion_shared.tail import FETCH_MAX_WAIT_MS
from clarion_shared.topics import Topics

from . import web
from .apps import routes as app_routes
from .apps.mongo import MongoApps
from .apps.service import AppRepository, KeyResolver, ensure_dev_app
from .authoring.cache import AuthoringCache
from .authoring.kafka import KafkaAnnouncer
from .authoring.service import (
    Announcer,
    AnnouncingChannels,
    AnnouncingTemplates,
    CachedChannels,
    CachedTemplates,
)
from .campaigns import routes as campaign_routes
from .campaigns.audience import AudienceLocks, Directory, RecipientRepository
from .campaigns.directory import PeerDirectory
from .campaigns.mongo import MongoAudienceLocks, MongoCampaigns, MongoRecipients
from .campaigns.service import CampaignRepository
from .categories import routes as category_routes
from .categories.mongo import MongoCategories
from .categories.service import CategoryRepository
from .channels import routes as channel_routes
from .channels.kafka import KafkaChannelConfigs
from .channels.mongo import MongoChannels
from .channels.service import ChannelRepository, ConfigPublisher
from .errors import ERRORS
from .idempotency.mongo import MongoIdempotency
from .idempotency.service import IdempotencyRepository
from .proxies import routes as proxy_routes
from .proxies.batches import batches_router
from .proxies.peers import PEERS, Peer, Peers
from .sends import routes as send_routes
from .sends.domain import SendLimits
from .sends.kafka import KafkaSends, SendReplies
from .sends.registry import PeerBatchRegistry
from .sends.service import BatchRegistry, Realtime, Requester, SendCommands
from .templates import routes as template_routes
from .templates.domain import TemplateLimits
from .templates.mongo import MongoTemplates
from .templates.service import TemplateRepository

SERVICE = "api-gateway"

DESCRIPTION = """\
The public HTTP edge of Clarion, compatible with the CometChat Campaigns REST API.

Every `/v3` request carries `apikey: <key>` (and optionally `appid`, which must match).
Errors use the envelope `{"error": {"code", "message", "devMessage", "details", "source"}}`;
request validation is 400 `ERR_VALIDATION`. POSTs that create or send accept
`Idempotency-Key`.
"""


# Bytes a send command takes besides its template, receivers and variables (ids,
# channel ids, tag, counters), with room to spare.
_RECORD_OVERHEAD = 16 * 1024


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLARION_GATEWAY_", extra="ignore", frozen=True)

    db_name: str = "clarion_gateway"
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
    batch_chunk_max_bytes: int = Field(
        default=512 * 1024,
        ge=64 * 1024,
        le=900_000,
        description="Bytes of a batch command record at most (the broker's default "
        "message.max.bytes is 1 MB): a chunk is cut earlier when its receivers' variables "
        "weigh more.",
    )
    variable_max_bytes: int = Field(
        default=8 * 1024, ge=1, description="One variable value of a send, as JSON."
    )
    receiver_variables_max_bytes: int = Field(
        default=32 * 1024, ge=1, description="All the variables of one receiver, as JSON."
    )
    template_channel_max_bytes: int = Field(
        default=64 * 1024, ge=1, description="One channel's content of a template, as JSON."
    )
    template_max_bytes: int = Field(
        default=128 * 1024,
        ge=1,
        description="A template version's content (all channels) and variable schema, as JSON.",
    )
    key_cache_ttl_s: float = Field(default=30.0, ge=0)
    idempotency_ttl_s: int = Field(default=24 * 3600, ge=1)
    idempotency_lease_s: int = Field(
        default=60,
        ge=1,
        description="A request with an Idempotency-Key that has not answered after this "
        "long is taken as dead (its process crashed): a retry runs it again.",
    )
    reply_fetch_max_wait_ms: int = Field(
        default=FETCH_MAX_WAIT_MS,
        ge=0,
        description="fetch_max_wait_ms of this process's tails (realtime replies, authoring "
        "changes): how often an idle tail asks the broker again; a record is answered at "
        "once whatever it is (clarion_shared.tail).",
    )
    authoring_cache_size: int = Field(
        default=10_000,
        ge=0,
        description="Templates and channels each process keeps for sends (authoring.cache); "
        "0 turns the cache off: every send reads them from the database.",
    )
    authoring_cache_ttl_s: float = Field(
        default=30.0,
        gt=0,
        description="How long a cached template or channel is used at most: how stale it "
        "can be when the announcement of a change was lost.",
    )

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Self:
        if self.environment == "production" and self.admin_token == DEV_ADMIN_TOKEN:
            raise ValueError(
                "CLARION_GATEWAY_ADMIN_TOKEN must be set in production (the default is public)"
            )
        return self

    @model_validator(mode="after")
    def _one_receiver_fits_a_chunk(self) -> Self:
        # Every batch record holds the template and at least one receiver.
        needed = self.template_max_bytes + self.receiver_variables_max_bytes + _RECORD_OVERHEAD
        if needed > self.batch_chunk_max_bytes:
            raise ValueError(
                f"CLARION_GATEWAY_BATCH_CHUNK_MAX_BYTES must hold a template and one receiver's "
                f"variables: at least {needed} with the template and variable limits set"
            )
        return self

    def send_limits(self) -> SendLimits:
        return SendLimits(
            realtime_max=self.realtime_max_receivers,
            batch_max=self.batch_max_receivers,
            chunk_size=self.batch_chunk_size,
            chunk_max_bytes=self.batch_chunk_max_bytes,
            variable_max_bytes=self.variable_max_bytes,
            receiver_variables_max_bytes=self.receiver_variables_max_bytes,
        )

    def template_limits(self) -> TemplateLimits:
        return TemplateLimits(
            channel_content_max_bytes=self.template_channel_max_bytes,
            template_max_bytes=self.template_max_bytes,
        )

    def peer_urls(self) -> dict[Peer, str]:
        return {
            "dispatcher": self.dispatcher_url,
            "directory": self.directory_url,
            "webhooks": self.webhooks_url,
        }


@dataclass(frozen=True)
class Adapters:
    """Everything the gateway talks to."""

    database: Connection
    apps: AppRepository
    channels: ChannelRepository
    templates: TemplateRepository
    categories: CategoryRepository
    idempotency: IdempotencyRepository
    broker: Connection
    sends: SendCommands
    batches: BatchRegistry
    configs: ConfigPublisher
    replies: Requester
    peers: Peers
    # Announces template and channel writes; keeps the send path's cache coherent.
    authoring: Announcer
    campaigns: CampaignRepository
    recipients: RecipientRepository
    audience_locks: AudienceLocks
    # The user-directory's internal API (which uids exist, the user picker).
    directory: Directory

    @classmethod
    def connect(cls, settings: Settings) -> Adapters:
        """The real adapters (nothing started yet)."""
        client = mongo.make_client(
            settings.mongodb_url,
            timeout_ms=settings.mongo_timeout_ms,
            max_pool_size=settings.mongo_max_pool_size,
        )
        db = client[settings.db_name]
        channels = MongoChannels(db)
        broker = kafka.make_broker(settings, f"{SERVICE}-{settings.instance_id}")
        topics = Topics(settings.topic_prefix)
        peers = Peers.connect(
            settings.peer_urls(),
            settings.peer_timeout_s,
            internal_token=settings.internal_token,
        )
        return cls(
            database=mongo.MongoConnection(client),
            apps=MongoApps(db, channels.exists),
            channels=channels,
            templates=MongoTemplates(db),
            categories=MongoCategories(db),
            idempotency=MongoIdempotency(db),
            broker=kafka.BrokerConnection(broker),
            sends=KafkaSends(broker, topics),
            batches=PeerBatchRegistry(peers),
            configs=KafkaChannelConfigs(broker, topics),
            replies=SendReplies(
                settings.kafka_bootstrap_servers, topics.replies, settings.reply_fetch_max_wait_ms
            ),
            peers=peers,
            authoring=KafkaAnnouncer(
                broker,
                topics,
                settings.kafka_bootstrap_servers,
                AuthoringCache(settings.authoring_cache_size, settings.authoring_cache_ttl_s),
                settings.reply_fetch_max_wait_ms,
            ),
            campaigns=MongoCampaigns(db),
            recipients=MongoRecipients(db),
            audience_locks=MongoAudienceLocks(db),
            directory=PeerDirectory(peers),
        )

    def resources(self) -> list[Resource]:
        """What the lifespan starts, in this order, and stops in reverse."""
        return [
            self.database,
            self.peers,
            self.apps,
            self.channels,
            self.templates,
            self.categories,
            self.campaigns,
            self.recipients,
            self.idempotency,
            self.broker,
            # Positions on the reply topic are fixed before the first request can come,
            # and so are those of the authoring changes (the cache opens then).
            self.replies,
            self.authoring,
        ]

    def readiness(self) -> dict[str, ReadinessCheck]:
        """The /readyz checks."""

        async def replies_ready() -> bool:
            return self.replies.ready

        return {
            "mongo": self.database.ready,
            "kafka": self.broker.ready,
            "replies": replies_ready,
            "authoring_changes": self.authoring.ready,
            **{peer: _peer_check(self.peers, peer) for peer in PEERS},
        }


def _peer_check(peers: Peers, peer: Peer) -> ReadinessCheck:
    async def check() -> bool:
        return await peers.ready(peer)

    return check


def compose(settings: Settings, adapters: Adapters) -> FastAPI:
    """Use cases wired to ``adapters``; routes, lifespan, readiness."""
    resources = adapters.resources()
    if settings.environment == "dev":
        # The app and key of ``make run``, written once the repositories are up.

        async def dev_app() -> None:
            await ensure_dev_app(adapters.apps, settings.dev_app_id, settings.dev_api_key, now())

        resources.append(on_start(dev_app))
    app = http.create_app(
        SERVICE,
        "Clarion API",
        lifespan(SERVICE, resources),
        errors=ERRORS,
        readiness=adapters.readiness(),
        description=DESCRIPTION,
        internal_token=settings.internal_token,
    )
    auth = web.auth(
        KeyResolver(adapters.apps, ttl_s=settings.key_cache_ttl_s), settings.admin_token
    )
    responder = web.Responder(
        adapters.idempotency, ERRORS, settings.idempotency_ttl_s, settings.idempotency_lease_s
    )
    for router in _routers(settings, adapters, auth, responder):
        app.include_router(router)
    return app


def _routers(
    settings: Settings, adapters: Adapters, auth: web.Auth, responder: web.Responder
) -> list[APIRouter]:
    """Every route, wired to its use cases' dependencies, in the order they match."""
    realtime = Realtime(
        adapters.replies, Topics(settings.topic_prefix).replies, settings.realtime_timeout_s
    )
    limits = settings.send_limits()
    # Every write of a template or a channel is announced; sends read them cached.
    templates = AnnouncingTemplates(adapters.templates, adapters.authoring)
    channels = AnnouncingChannels(adapters.channels, adapters.authoring)
    # The send route and the batch proxy come before the notification proxy: all live
    # under /v3/campaigns/notifications. The category routes come before the template
    # routes, whose /{template_id} would take "categories" for an id.
    return [
        app_routes.router(auth, adapters.apps),
        channel_routes.router(auth, responder, channels, adapters.apps, adapters.configs),
        category_routes.router(auth, responder, adapters.categories, templates),
        template_routes.router(
            auth, responder, templates, adapters.categories, settings.template_limits()
        ),
        send_routes.router(
            auth,
            responder,
            CachedTemplates(templates, adapters.authoring.cache),
            CachedChannels(channels, adapters.authoring.cache),
            adapters.sends,
            adapters.batches,
            realtime,
            limits,
        ),
        campaign_routes.router(
            auth,
            responder,
            adapters.campaigns,
            adapters.recipients,
            adapters.audience_locks,
            adapters.directory,
            templates,
            limits,
        ),
        batches_router(auth, adapters.peers),
        proxy_routes.notifications_router(auth, adapters.peers),
        proxy_routes.feed_router(auth, adapters.peers),
        proxy_routes.users_router(auth, adapters.peers),
    ]


def build(settings: Settings) -> FastAPI:
    return compose(settings, Adapters.connect(settings))
