"""Campaigns: the entity, its lifecycle and its rules. Pure: no I/O.

A campaign pins one approved version of a template, holds campaign-level variables (the
layer between a recipient's own and the template's defaults) and an audience of at most
``MAX_RECIPIENTS`` distinct users, and moves through the statuses of API.md:

    draft ──schedule──► scheduled ──(time)──► sending ──► completed | partially_failed | failed
      │  └───────────send now────────────────►   ▲
      │            scheduled ──send now──────────┘
      └──cancel──► cancelled ◄──cancel── scheduled

Only a draft is edited, deleted or given recipients; only a draft or a scheduled
campaign is cancelled or sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import JsonValue

from clarion_shared.errors import Conflict, DomainError, Invalid, NotFound
from clarion_shared.ids import derive_id

from ..templates.domain import Template, TemplateNotApproved, TemplateVersion

CampaignStatus = Literal[
    "draft", "scheduled", "sending", "completed", "failed", "partially_failed", "cancelled"
]
CAMPAIGN_STATUSES: tuple[CampaignStatus, ...] = (
    "draft",
    "scheduled",
    "sending",
    "completed",
    "failed",
    "partially_failed",
    "cancelled",
)
MAX_RECIPIENTS = 10_000
NAME_MAX_LENGTH = 200

CampaignVariables = dict[str, JsonValue]


@dataclass(frozen=True)
class CampaignCounts:
    """The progress read model, kept from status events (not counted on reads)."""

    sent: int = 0
    delivered: int = 0
    failed: int = 0
    read: int = 0


@dataclass(frozen=True)
class Campaign:
    app_id: str
    campaign_id: str
    name: str
    template_id: str
    template_version: int
    status: CampaignStatus
    created_at: int
    updated_at: int
    variables: CampaignVariables = field(default_factory=dict)
    tag: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    scheduled_at: int | None = None
    started_at: int | None = None
    # When every chunk of the send was published (None while sending: not yet, or a
    # send cut short by a crash, which ``POST .../send`` resumes).
    dispatched_at: int | None = None
    completed_at: int | None = None
    # Distinct recipients in the audience (``totalTargets``).
    total_targets: int = 0
    counts: CampaignCounts = field(default_factory=CampaignCounts)
    # (sent, failed) of each chunk the dispatcher reported (``ChunkDispatched``): set,
    # not added, so a redelivered event counts once.
    chunk_counts: dict[int, tuple[int, int]] = field(default_factory=dict)
    revision: int = 0


class CampaignNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Campaign")


class CampaignStatusRefused(DomainError):
    """The campaign's status does not allow the operation (400 ``ERR_CAMPAIGN_STATUS``,
    as CometChat answers 400 "Campaign not in draft status")."""

    def __init__(self, campaign: Campaign, operation: str, allowed: tuple[str, ...]) -> None:
        super().__init__(
            f"The campaign is {campaign.status}; {operation} needs it {' or '.join(allowed)}.",
            details={"status": campaign.status, "allowed": list(allowed)},
        )


class CampaignBusy(Conflict):
    """Another request changed the campaign in between, every time we tried."""

    def __init__(self) -> None:
        super().__init__("The campaign is being changed by another request; try again.")


class TemplateVersionUnusable(DomainError):
    """``templateVersion`` names no version of the template (400
    ``ERR_TEMPLATE_NOT_FOUND``)."""

    def __init__(self, template: Template, version: int) -> None:
        super().__init__(
            f"Template {template.template_id} has no version {version}.",
            details={
                "templateId": template.template_id,
                "templateVersion": version,
                "versions": [v.version for v in template.versions],
            },
        )


class CampaignEmpty(DomainError):
    """A send of a campaign without recipients (400 ``ERR_BAD_REQUEST``)."""

    def __init__(self) -> None:
        super().__init__(
            "The campaign has no recipients.",
            dev_message="Add recipients (POST .../recipients or a CSV) before sending.",
        )


def pinned_version(template: Template, version: int) -> TemplateVersion:
    """The approved version ``version`` of ``template``: what the campaign sends."""
    found = next((v for v in template.versions if v.version == version), None)
    if found is None:
        raise TemplateVersionUnusable(template, version)
    if found.status != "approved" or template.archived:
        raise TemplateNotApproved(template)
    return found


def check_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > NAME_MAX_LENGTH:
        raise Invalid(f"name must be 1-{NAME_MAX_LENGTH} characters.", details=[{"field": "name"}])
    return cleaned


def require(campaign: Campaign, operation: str, *allowed: CampaignStatus) -> None:
    if campaign.status not in allowed:
        raise CampaignStatusRefused(campaign, operation, allowed)


def edited(
    campaign: Campaign, now: int, *, name: str | None, config: dict[str, Any] | None
) -> Campaign:
    require(campaign, "an update", "draft")
    updated = replace(
        campaign,
        name=check_name(name) if name is not None else campaign.name,
        config=config if config is not None else campaign.config,
    )
    return updated if updated == campaign else replace(updated, updated_at=now)


def cancelled(campaign: Campaign, now: int) -> Campaign:
    require(campaign, "cancel", "draft", "scheduled")
    return replace(campaign, status="cancelled", scheduled_at=None, updated_at=now)


def scheduled(campaign: Campaign, at: int, now: int) -> Campaign:
    """Scheduled (again) at ``at``, Unix seconds in the future."""
    require(campaign, "schedule", "draft", "scheduled")
    if campaign.total_targets == 0:
        raise CampaignEmpty()
    if at <= now:
        raise Invalid(
            "scheduledAt must be in the future (Unix seconds).",
            details=[{"field": "scheduledAt", "value": at, "now": now}],
        )
    return replace(campaign, status="scheduled", scheduled_at=at, updated_at=now)


def started(campaign: Campaign, now: int) -> Campaign:
    """``sending`` from a draft or a scheduled campaign (send now overrides a schedule);
    a send cut short before all its chunks were published is resumed as it is."""
    if campaign.status == "sending" and campaign.dispatched_at is None:
        return campaign
    require(campaign, "send", "draft", "scheduled")
    if campaign.total_targets == 0:
        raise CampaignEmpty()
    return replace(campaign, status="sending", started_at=now, scheduled_at=None, updated_at=now)


def dispatched(campaign: Campaign, now: int) -> Campaign:
    if campaign.dispatched_at is not None:
        return campaign
    return replace(campaign, dispatched_at=now, updated_at=now)


def chunk_dispatched(campaign: Campaign, chunk: int, sent: int, failed: int) -> Campaign:
    """A chunk's counts while sending (a late or replayed report after the decision
    changes nothing: the completion's counts are final)."""
    if campaign.status != "sending" or campaign.chunk_counts.get(chunk) == (sent, failed):
        return campaign
    chunk_counts = {**campaign.chunk_counts, chunk: (sent, failed)}
    counts = replace(
        campaign.counts,
        sent=sum(s for s, _ in chunk_counts.values()),
        failed=sum(f for _, f in chunk_counts.values()),
    )
    return replace(campaign, chunk_counts=chunk_counts, counts=counts)


def finished(
    campaign: Campaign,
    status: Literal["completed", "partially_failed", "failed"],
    completed_at: int,
    sent: int,
    delivered: int,
    failed: int,
) -> Campaign:
    """The dispatcher's one decision (``BatchCompleted``): the final status and counts."""
    if campaign.status != "sending":
        return campaign  # decided already (a redelivered event), or not this campaign's
    delivered = max(delivered, campaign.counts.delivered)  # the marks may know more
    counts = replace(campaign.counts, sent=sent, delivered=delivered, failed=failed)
    return replace(
        campaign, status=status, completed_at=completed_at, counts=counts, updated_at=completed_at
    )


def with_engagement(campaign: Campaign, delivered: int, read: int) -> Campaign:
    """The recipients whose items were delivered and read, as counted from their marks
    (counts only grow: a count taken before a later one is never applied over it)."""
    counts = replace(
        campaign.counts,
        delivered=max(delivered, campaign.counts.delivered),
        read=max(read, campaign.counts.read),
    )
    return campaign if counts == campaign.counts else replace(campaign, counts=counts)


def with_audience(campaign: Campaign, added: int, now: int) -> Campaign:
    return replace(campaign, total_targets=campaign.total_targets + added, updated_at=now)


RecipientStatus = Literal["pending", "processing", "completed", "failed"]
RECIPIENT_STATUSES: tuple[RecipientStatus, ...] = ("pending", "processing", "completed", "failed")


@dataclass(frozen=True)
class Recipient:
    """One user of a campaign's audience, with the variables it brought (a CSV row's
    cells or ``userVariables``)."""

    app_id: str
    campaign_id: str
    uid: str
    seq: int  # the order in which the audience was built
    created_at: int
    updated_at: int
    variables: dict[str, JsonValue] = field(default_factory=dict)
    status: RecipientStatus = "pending"
    code: str | None = None
    message: str | None = None

    @property
    def recipient_id(self) -> str:
        return recipient_id(self.app_id, self.campaign_id, self.uid)


def recipient_id(app_id: str, campaign_id: str, uid: str) -> str:
    return "rcp_" + derive_id(app_id, campaign_id, uid)


@dataclass(frozen=True)
class RecipientRejected:
    """A uid not added, and why (``row`` for a CSV row)."""

    uid: str | None
    code: str
    message: str
    row: int | None = None


class TooManyRecipients(DomainError):
    """The audience would exceed ``MAX_RECIPIENTS`` (400 ``ERR_TARGET_LIMIT_EXCEEDED``)."""

    def __init__(self, existing: int, adding: int, limit: int = MAX_RECIPIENTS) -> None:
        super().__init__(
            f"A campaign has at most {limit} distinct recipients.",
            dev_message=f"The audience has {existing}; this would add {adding} more.",
            details={"existing": existing, "adding": adding, "limit": limit},
        )


class AudienceBusy(Conflict):
    """Another change of the audience (an addition or a CSV import) is running."""

    def __init__(self) -> None:
        super().__init__("Another change of the campaign's audience is running; try again.")
