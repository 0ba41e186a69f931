"""The gateway's use cases wired to its adapters: the background workers ``compose``
starts and every router, in the order they match. ``app.py`` builds the adapters and
the app; this module says what runs on them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fastapi import APIRouter

from clarion_shared.contracts.status import AnyStatusEvent
from clarion_shared.topics import Topics

from . import web
from .apps import routes as app_routes
from .authoring.service import (
    AnnouncingChannels,
    AnnouncingTemplates,
    CachedChannels,
    CachedTemplates,
)
from .campaigns import progress as campaign_progress
from .campaigns import routes as campaign_routes
from .campaigns.domain import Campaign
from .campaigns.routes import CampaignSending
from .campaigns.scheduler import CampaignScheduler
from .campaigns.sending import send_campaign
from .categories import routes as category_routes
from .channels import routes as channel_routes
from .live import routes as live_routes
from .live import service as live_service
from .live.peers import PeerBatchStatuses
from .proxies import routes as proxy_routes
from .proxies.analytics import analytics_router
from .proxies.batches import batches_router
from .proxies.sends import sends_router
from .sends import routes as send_routes
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


def routers(  # long: every router, in match order, one entry each
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
    send_templates = CachedTemplates(templates, adapters.authoring.cache)
    send_channels = CachedChannels(channels, adapters.authoring.cache)
    # The send route, the live streams, the batch proxy and the sends listing come
    # before the notification proxy: all live under /v3/campaigns/notifications. The
    # category routes come before the template routes, whose /{template_id} would take
    # "categories" for an id.
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
    ]
