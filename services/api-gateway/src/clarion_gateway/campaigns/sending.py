"""Sending a campaign: through the same path as a batch send (registered with the
dispatcher, then chunks on ``clarion.sends``), with ``mode="campaign"`` and the campaign's
id as the send's id.

The steps, each repeatable: the campaign turns ``sending`` (conditional save), its
audience is registered and published, then it is marked dispatched. A send cut short
after the first step (the broker or the dispatcher unreachable, or a crash) leaves the
campaign ``sending`` without ``dispatchedAt``; ``POST .../send`` again resumes it, and
the dispatcher's derived ids make the repeated chunks no-ops.
"""

from __future__ import annotations

from pydantic import JsonValue

from clarion_shared.errors import Invalid
from clarion_shared.logging import get_logger

from ..sends.domain import SendLimits, UnknownTemplate, check_variables
from ..sends.service import (
    BatchRegistry,
    ChannelSource,
    PreparedSend,
    SendCommands,
    TemplateSource,
    publish_batch,
    snapshot_of,
)
from .audience import AudienceLocks, RecipientRepository, audience_lock
from .domain import Campaign, dispatched, pinned_version, started
from .service import CampaignRepository, change_campaign, get_campaign

log = get_logger(__name__)


def recipient_variables(
    campaign_variables: dict[str, JsonValue], own: dict[str, JsonValue]
) -> dict[str, JsonValue]:
    """A recipient's variables: its own (a CSV row, ``userVariables``) over the
    campaign's; the template's defaults apply below both when the dispatcher renders."""
    return {**campaign_variables, **own}


async def send_campaign(  # long: the send's steps in order, each one call
    campaigns: CampaignRepository,
    recipients: RecipientRepository,
    locks: AudienceLocks,
    templates: TemplateSource,
    channels: ChannelSource,
    commands: SendCommands,
    registry: BatchRegistry,
    app_id: str,
    campaign_id: str,
    now: int,
    limits: SendLimits = SendLimits(),
) -> Campaign:
    campaign = await get_campaign(campaigns, app_id, campaign_id)
    started(campaign, now)  # refuses early what cannot be sent (status, no recipients)
    async with audience_lock(locks, campaign, now):
        template = await templates.get(app_id, campaign.template_id)
        if template is None:
            raise UnknownTemplate(campaign.template_id)
        snapshot = await snapshot_of(
            channels, template, pinned_version(template, campaign.template_version)
        )
        audience = sorted(await recipients.list(app_id, campaign_id), key=lambda r: r.seq)
        if not audience:
            raise Invalid("The campaign has no recipients.")
        variables = {r.uid: recipient_variables(campaign.variables, r.variables) for r in audience}
        check_variables(variables, limits)
        campaign = await change_campaign(campaigns, app_id, campaign_id, lambda c: started(c, now))
        send = PreparedSend(
            app_id=app_id,
            receivers=tuple(r.uid for r in audience),
            variables={uid: values for uid, values in variables.items() if values},
            snapshot=snapshot,
            tag=campaign.tag,
        )
        await publish_batch(
            send, campaign_id, commands, registry, limits, campaign.started_at or now, "campaign"
        )
        campaign = await change_campaign(
            campaigns, app_id, campaign_id, lambda c: dispatched(c, now)
        )
    log.info(
        "campaign.sent",
        app_id=app_id,
        campaign_id=campaign_id,
        recipients=len(audience),
        template_id=campaign.template_id,
        version=campaign.template_version,
    )
    return campaign
