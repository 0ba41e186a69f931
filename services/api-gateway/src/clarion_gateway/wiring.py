"""The gateway's use cases wired to its adapters: the background workers ``compose``
starts and every router, in the order they match. ``app.py`` builds the adapters and
the app; this module says what runs on them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import APIRouter

from clarion_shared.contracts.status import AnyStatusEvent
from clarion_shared.ids import now
from clarion_shared.lifecycle import Resource, on_start
from clarion_shared.topics import Topics

from . import web
from .apps import routes as app_routes
from .audit.service import Auditor
from .authoring.service import (
    AnnouncingChannels,
    AnnouncingTemplates,
    CachedChannels,
    CachedTemplates,
)
from .campaigns import progress as campaign_progress
from .campaigns import routes as campaign_routes
from .campaigns.domain import Campaign
from .campaigns.dry_run_runner import DryRunRunner
from .campaigns.imports import ImportContext, ImportRunner
from .campaigns.routes import CampaignSending
from .campaigns.scheduler import CampaignScheduler
from .campaigns.sending import send_campaign
from .categories import routes as category_routes
from .channels import routes as channel_routes
from .dashboard import routes as dashboard_routes
from .dashboard import routes_audit as dashboard_audit
from .dashboard import (
    routes_campaign_detail,
    routes_campaigns,
    routes_sends,
    routes_templates,
    routes_webhooks,
)
from .dashboard import routes_users as dashboard_users
from .dashboard.kit import PageKit
from .dashboard.sending import SendPath
from .dashboard.users import DirectoryUsers
from .dashboard.web import Dashboard, environment
from .live import routes as live_routes
from .live import service as live_service
from .live.peers import PeerBatchStatuses
from .operators import routes as operator_routes
from .operators.service import Accounts, ensure_first_operator
from .proxies import routes as proxy_routes
from .proxies.analytics import analytics_router
from .proxies.batches import batches_router
from .proxies.push import push_router
from .proxies.sends import sends_router
from .sends import routes as send_routes
from .sends.domain import SendLimits
from .sends.service import Realtime
from .settings import Settings
from .templates import routes as template_routes
from .webhooks import outbox
from .webhooks import routes as webhook_routes
from .webhooks.consumers import apply_states
from .webhooks.deliveries import deliveries_router

if TYPE_CHECKING:
    from .app import Adapters


def campaign_workers(settings: Settings, adapters: Adapters) -> CampaignScheduler:
    """Campaign progress from the status events, and the scheduler (a resource) that
    sends scheduled campaigns and resumes sends cut short."""

    async def on_status(events: Sequence[AnyStatusEvent]) -> None:
        await campaign_progress.apply_status(
            adapters.campaigns, adapters.campaign_tracking, adapters.campaign_finished, events
        )

    adapters.campaign_events.subscribe(on_status)
    cache = adapters.authoring.cache

    async def fire(campaign: Campaign, at: int) -> Campaign:
        return await send_campaign(
            adapters.campaigns,
            adapters.recipients,
            adapters.audience_locks,
            CachedTemplates(AnnouncingTemplates(adapters.templates, adapters.authoring), cache),
            CachedChannels(AnnouncingChannels(adapters.channels, adapters.authoring), cache),
            adapters.sends,
            adapters.batches,
            campaign.app_id,
            campaign.campaign_id,
            at,
            settings.send_limits(),
        )

    return CampaignScheduler(
        adapters.campaigns,
        fire,
        settings.campaign_scheduler_interval_s,
        settings.campaign_send_stall_s,
    )


def webhook_workers(settings: Settings, adapters: Adapters) -> outbox.Republisher:
    """The emitter's endpoint state changes applied, and the republisher (a resource)
    of the configurations written but not published."""
    apply_states(adapters.webhook_states, adapters.webhooks, adapters.webhook_configs)
    return outbox.Republisher(
        adapters.webhooks, adapters.webhook_configs, settings.webhook_republish_interval_s
    )


def csv_runners(settings: Settings, adapters: Adapters) -> tuple[ImportRunner, DryRunRunner]:
    """CSV imports and their dry runs, run in the background of this process."""
    imports = ImportRunner(
        ImportContext(
            adapters.campaigns,
            adapters.recipients,
            adapters.audience_locks,
            adapters.directory,
            adapters.csv_imports,
            settings.csv_limits(),
        )
    )
    return imports, DryRunRunner(imports.context)


def first_operator(settings: Settings, adapters: Adapters) -> Resource:
    """The dashboard's superuser (API.md, Dashboard), written once the repositories
    are up: created from the settings when missing, an existing one left its password."""

    async def ensure() -> None:
        first = settings.first_operator()
        if first is None:
            return  # production without a password set: operators come from /admin
        await ensure_first_operator(adapters.operators, *first, now())

    return on_start(ensure)


def dashboard(settings: Settings, adapters: Adapters) -> Dashboard:
    """What every dashboard page shares: accounts, apps, templates, cookie rules."""
    accounts = Accounts(
        adapters.operators,
        adapters.sessions,
        adapters.login_attempts,
        settings.session_policy(),
        settings.login_limits(),
    )
    return Dashboard(
        accounts, adapters.apps, environment(), settings.public_origin, settings.secure_cookies
    )


@dataclass(frozen=True)
class UseCases:
    """What the public routes and the dashboard's pages share: every write of a
    template or a channel is announced; sends read them cached."""

    templates: AnnouncingTemplates
    channels: AnnouncingChannels
    send_templates: CachedTemplates
    send_channels: CachedChannels
    realtime: Realtime
    limits: SendLimits
    auditor: Auditor


def use_cases(settings: Settings, adapters: Adapters) -> UseCases:
    templates = AnnouncingTemplates(adapters.templates, adapters.authoring)
    channels = AnnouncingChannels(adapters.channels, adapters.authoring)
    return UseCases(
        templates,
        channels,
        CachedTemplates(templates, adapters.authoring.cache),
        CachedChannels(channels, adapters.authoring.cache),
        Realtime(
            adapters.replies, Topics(settings.topic_prefix).replies, settings.realtime_timeout_s
        ),
        settings.send_limits(),
        Auditor(adapters.audit),
    )


def routers(  # long: every router, in match order, one entry each
    settings: Settings,
    adapters: Adapters,
    auth: web.Auth,
    responder: web.Responder,
    uses: UseCases,
) -> list[APIRouter]:
    """Every public route, wired to its use cases' dependencies, in match order."""
    templates, channels = uses.templates, uses.channels
    send_templates, send_channels = uses.send_templates, uses.send_channels
    realtime, limits = uses.realtime, uses.limits
    # The send route, the live streams, the batch proxy and the sends listing come
    # before the notification proxy: all live under /v3/campaigns/notifications. The
    # category routes come before the template routes, whose /{template_id} would take
    # "categories" for an id.
    return [
        app_routes.router(auth, adapters.apps),
        channel_routes.router(
            auth,
            responder,
            channels,
            adapters.apps,
            adapters.configs,
            settings.webhooks_allow_private,
        ),
        category_routes.router(auth, responder, adapters.categories, templates),
        template_routes.router(
            auth, responder, templates, adapters.categories, settings.template_limits()
        ),
        send_routes.router(
            auth,
            responder,
            send_templates,
            send_channels,
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
            adapters.campaign_tracking,
            adapters.audience_locks,
            adapters.directory,
            templates,
            limits,
            CampaignSending(send_templates, send_channels, adapters.sends, adapters.batches),
        ),
        live_routes.router(
            auth,
            adapters.live,
            live_service.campaign_reader(adapters.campaigns, adapters.campaign_tracking),
            live_service.batch_reader(PeerBatchStatuses(adapters.peers)),
        ),
        batches_router(auth, adapters.peers),
        analytics_router(auth, adapters.peers),
        sends_router(auth, adapters.peers),
        proxy_routes.notifications_router(auth, adapters.peers),
        push_router(auth, adapters.peers),
        proxy_routes.feed_router(auth, adapters.peers),
        proxy_routes.users_router(auth, adapters.peers),
        webhook_routes.router(
            auth,
            responder,
            adapters.webhooks,
            outbox.after_write(adapters.webhooks, adapters.webhook_configs),
            settings.webhook_rules(),
        ),
        deliveries_router(auth, adapters.webhooks, adapters.peers),
        operator_routes.router(auth, adapters.operators, adapters.apps),
    ]


def dashboard_routers(kit: PageKit) -> list[APIRouter]:
    """Every dashboard page, on the same use cases as the public routes."""
    uses, adapters = kit.uses, kit.adapters
    return [
        dashboard_routes.router(kit.dashboard, kit.auditor),
        dashboard_audit.router(kit.dashboard, adapters.audit),
        dashboard_users.router(
            kit.dashboard,
            kit.auditor,
            DirectoryUsers(adapters.peers),
            SendPath(
                uses.templates,
                uses.send_templates,
                uses.send_channels,
                adapters.sends,
                adapters.batches,
                uses.realtime,
                uses.limits,
                adapters.peers,
            ),
        ),
        routes_templates.router(kit),
        routes_campaigns.router(kit),
        routes_campaign_detail.router(kit),
        routes_sends.router(kit),
        routes_webhooks.router(kit),
    ]
