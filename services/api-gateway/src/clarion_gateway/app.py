"""Composition root of the api-gateway: Settings, Adapters, compose(), build()."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from clarion_shared import http, kafka, mongo
from clarion_shared.http import ReadinessCheck
from clarion_shared.ids import now
from clarion_shared.lifecycle import Connection, Resource, lifespan, on_start
from clarion_shared.topics import Topics

from . import web, wiring
from .apps.mongo import MongoApps
from .apps.service import AppRepository, KeyResolver, ensure_dev_app
from .audit.mongo import MongoAuditLog
from .audit.service import AuditLog
from .authoring.cache import AuthoringCache
from .authoring.kafka import KafkaAnnouncer
from .authoring.service import (
    Announcer,
)
from .campaigns import import_routes, objects_s3
from .campaigns.audience import AudienceLocks, Directory, RecipientRepository
from .campaigns.consumers import KafkaCampaignEvents
from .campaigns.directory import PeerDirectory
from .campaigns.finished import FinishedPublisher, KafkaFinishedPublisher
from .campaigns.imports import ImportStorage
from .campaigns.imports_mongo import mongo_import_storage
from .campaigns.mongo import MongoAudienceLocks, MongoCampaigns, MongoRecipients
from .campaigns.progress import CampaignEvents
from .campaigns.service import CampaignRepository
from .campaigns.tracking import TrackingRepository
from .campaigns.tracking_mongo import MongoCampaignTracking
from .campaigns.uploads import UploadSigner, signing_key
from .categories.mongo import MongoCategories
from .categories.service import CategoryRepository
from .channels.kafka import KafkaChannelConfigs
from .channels.mongo import MongoChannels
from .channels.service import ChannelRepository, ConfigPublisher
from .dashboard import web as dashboard_web
from .dashboard.kit import PageKit
from .errors import ERRORS
from .idempotency.mongo import MongoIdempotency
from .idempotency.service import IdempotencyRepository
from .live.hub import LiveHub, status_tail
from .operators.mongo import MongoLoginAttempts, MongoOperators, MongoSessions
from .operators.service import LoginAttempts, OperatorRepository, SessionRepository
from .proxies.peers import PEERS, Peer, Peers
from .sends.kafka import KafkaSends, SendReplies
from .sends.registry import PeerBatchRegistry
from .sends.service import BatchRegistry, Requester, SendCommands
from .settings import Settings as Settings
from .templates.mongo import MongoTemplates
from .templates.service import TemplateRepository
from .webhooks.consumers import KafkaWebhookStates, WebhookStates
from .webhooks.kafka import KafkaWebhookConfigs
from .webhooks.mongo import MongoWebhooks
from .webhooks.service import ConfigPublisher as WebhookConfigPublisher
from .webhooks.service import WebhookRepository

SERVICE = "api-gateway"

DESCRIPTION = """\
The public HTTP edge of Clarion, compatible with the CometChat Campaigns REST API.

Every `/v3` request carries `apikey: <key>` (and optionally `appid`, which must match).
Errors use the envelope `{"error": {"code", "message", "devMessage", "details", "source"}}`;
request validation is 400 `ERR_VALIDATION`. POSTs that create or send accept
`Idempotency-Key`.
"""


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
    # Status events of campaigns (a consumer group of clarion.status).
    campaign_events: CampaignEvents
    # Announces the campaigns those events made final (on clarion.status).
    campaign_finished: FinishedPublisher
    # The recipients' states and channels' numbers kept from those events.
    campaign_tracking: TrackingRepository
    # CSV imports: upload keys, uploaded files, imports; the S3 object store if configured.
    csv_imports: ImportStorage
    # Webhook endpoints, the publisher of their configurations (for the emitter), and
    # the endpoint state changes the emitter decides (a consumer group of its topic).
    webhooks: WebhookRepository
    webhook_configs: WebhookConfigPublisher
    webhook_states: WebhookStates
    # Live progress streams: the watches on this instance, woken by its own reader of
    # clarion.status (``live.hub``: no consumer group, paused while nobody watches).
    live: LiveHub
    live_tail: Resource
    # The dashboard's operators, their sessions, the failed sign-ins counted per window
    # (in the database: every process sees the same counts) and the audit log.
    operators: OperatorRepository
    sessions: SessionRepository
    login_attempts: LoginAttempts
    audit: AuditLog

    @classmethod
    def connect(cls, settings: Settings) -> Adapters:  # long: one adapter a line
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
        live = LiveHub()
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
            campaign_events=KafkaCampaignEvents(
                broker, topics, settings.group_id, settings.group_instance_id
            ),
            campaign_finished=KafkaFinishedPublisher(broker, topics),
            campaign_tracking=MongoCampaignTracking(db),
            csv_imports=mongo_import_storage(db, objects_s3.connect(settings.object_store())),
            webhooks=MongoWebhooks(db),
            webhook_configs=KafkaWebhookConfigs(broker, topics),
            webhook_states=KafkaWebhookStates(
                broker, topics, settings.group_id, settings.group_instance_id
            ),
            live=live,
            live_tail=status_tail(
                settings.kafka_bootstrap_servers,
                topics.status,
                live,
                settings.reply_fetch_max_wait_ms,
            ),
            operators=MongoOperators(db),
            sessions=MongoSessions(db),
            login_attempts=MongoLoginAttempts(db),
            audit=MongoAuditLog(db),
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
            self.campaign_tracking,
            self.csv_imports,
            self.idempotency,
            self.webhooks,
            self.operators,
            self.sessions,
            self.login_attempts,
            self.audit,
            self.broker,
            # Positions on the reply topic are fixed before the first request can come,
            # and so are those of the authoring changes (the cache opens then).
            self.replies,
            self.authoring,
            self.live_tail,
        ]

    def readiness(self) -> dict[str, ReadinessCheck]:
        """The /readyz checks."""

        async def replies_ready() -> bool:
            return self.replies.ready

        return {
            "mongo": self.database.ready,
            "kafka": self.broker.ready,
            "replies": replies_ready,
            "campaign_events": self.campaign_events.ready,
            "webhook_states": self.webhook_states.ready,
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
    resources.append(wiring.first_operator(settings, adapters))
    scheduler = wiring.campaign_workers(settings, adapters)
    resources.append(scheduler)
    resources.append(wiring.webhook_workers(settings, adapters))
    # CSV imports run in the background of this process: the runners start last (their
    # sweep resumes the imports a dead process left) and stop first.
    csv_imports, csv_dry_runs = wiring.csv_runners(settings, adapters)
    resources.extend([csv_imports, csv_dry_runs])
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
    uses = wiring.use_cases(settings, adapters)
    for router in wiring.routers(settings, adapters, auth, responder, uses):
        app.include_router(router)
    signer = UploadSigner(
        signing_key(settings.upload_secret, settings.internal_token, settings.environment),
        settings.public_url,
        settings.upload_url_ttl_s,
    )
    imports = import_routes.import_router(auth, responder, csv_imports, signer, csv_dry_runs)
    app.include_router(imports)
    import_routes.limit_uploads(app, settings.csv_max_bytes)
    dashboard = wiring.dashboard(settings, adapters)
    kit = PageKit(dashboard, uses.auditor, uses, adapters, settings, csv_imports, csv_dry_runs)
    for router in wiring.dashboard_routers(kit):
        app.include_router(router)
    dashboard_web.install(app, dashboard)
    app.state.campaign_scheduler = scheduler
    return app


def build(settings: Settings) -> FastAPI:
    return compose(settings, Adapters.connect(settings))
