"""Tracking a campaign's send: each recipient's state and each channel's numbers, a read
model the gateway keeps from ``clarion.status`` (API.md: Finality, Campaigns).

The dispatcher says what became of a campaign chunk's receivers in its
``ChunkDispatched`` (each receiver's state, each channel's tally); the gateway stores
that report as it is (one document per chunk, its id derived from the chunk, so a
replayed event writes the same document). The tracker's ``ReceiversSettled`` says
which of a chunk's pending receivers are final now (a delivery worker sent or failed
what was queued); the gateway keeps those beside the report, in the same document, in
bulk per event. One rule joins the two, whatever order they come in (the workers'
events may overtake the fan-out's ``ChunkDispatched``): a receiver moves from pending
to a final state only, never back (``receiver_states``). Feed items marked delivered or
read leave a mark per (recipient, channel) and one per recipient for the whole campaign,
inserted once; the campaign's ``deliveredCount`` and ``readCount`` are the marks counted
when events arrive, so a replay counts nothing twice. A queued delivery a worker ended
(``DeliverySent``, or ``DeliveryFailed`` with its notification) leaves one mark per
delivery, keyed by its notification id (``mark_key``), sent or failed as the first
event said: its channel's numbers move it from queued to sent or failed once, however
often the event is redelivered or republished (``with_outcomes``). Reads join the
reports with the audience: a recipient is ``pending`` until its chunk is reported, then
``processing`` while a delivery waits for a worker, ``completed`` (sent) or ``failed``,
as reported or as settled since.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from clarion_shared.contracts.status import ChannelTally, ReceiverState
from clarion_shared.cursor import CursorPage, CursorRequest, ListSorts, PageRequest
from clarion_shared.lifecycle import Resource

from ..paging import PageOf, SortKey, paginate
from ..templates.service import TemplateRepository
from .audience import RecipientRepository
from .domain import RECIPIENT_STATUSES, Recipient, RecipientStatus
from .service import CampaignRepository, get_campaign

MarkKind = Literal["delivered", "read", "sent", "failed"]
WHOLE_CAMPAIGN = "*"  # a mark's channel when it counts the recipient for the campaign

_SHOWN: dict[str, RecipientStatus] = {
    "pending": "processing",  # dispatched, a delivery still queued
    "sent": "completed",
    "failed": "failed",
}


@dataclass(frozen=True)
class Settled:
    """One receiver of a chunk final at ``at``, after its report said pending."""

    state: ReceiverState
    at: int


@dataclass(frozen=True)
class ChunkReport:
    """What the dispatcher reported of one chunk of a campaign's send."""

    app_id: str
    campaign_id: str
    chunk: int
    at: int
    receivers: tuple[ReceiverState, ...]
    channels: tuple[ChannelTally, ...]
    # The chunk's receivers settled since (``ReceiversSettled``), by uid: kept when a
    # report of the chunk is written again.
    settled: tuple[Settled, ...] = ()


@dataclass(frozen=True)
class Settlement:
    """What one ``ReceiversSettled`` says of a campaign chunk: receivers final now."""

    app_id: str
    campaign_id: str
    chunk: int
    at: int
    receivers: tuple[ReceiverState, ...]


@dataclass(frozen=True)
class Mark:
    """A recipient's feed item was delivered or read, on a channel (or, with
    ``WHOLE_CAMPAIGN``, on any: what the campaign's counts count); or, with
    ``notification_id``, one queued delivery on the channel ended ``sent`` or
    ``failed`` at its worker."""

    app_id: str
    campaign_id: str
    uid: str
    channel_id: str
    kind: MarkKind
    at: int
    notification_id: str | None = None


def mark_key(mark: Mark) -> tuple[str, ...]:
    """What a mark is kept once for: a delivery's outcome once per delivery (its
    notification id, whichever outcome came first), a delivered or read mark once per
    recipient, channel and kind."""
    if mark.notification_id is not None:
        return (mark.app_id, mark.campaign_id, "delivery", mark.notification_id)
    return (mark.app_id, mark.campaign_id, mark.uid, mark.channel_id, mark.kind)


class TrackingRepository(Resource, Protocol):
    async def put_reports(self, reports: Sequence[ChunkReport]) -> None:
        """Store each report under its chunk's derived id (a repeat writes the same);
        the receivers settled in that chunk already stay settled."""
        ...

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        """Keep each settlement's receivers as settled in their chunk (its report may
        come later); a receiver settled again (a redelivered event) is written again."""
        ...

    async def reports(self, app_id: str, campaign_id: str) -> list[ChunkReport]: ...

    async def chunk_reports(
        self, app_id: str, campaign_id: str, chunks: Sequence[int]
    ) -> list[ChunkReport]:
        """The campaign's reports of those chunks (by their derived ids), in any order;
        a chunk only settled so far reads as a report without receivers."""
        ...

    async def mark(self, marks: Sequence[Mark]) -> None:
        """Insert the marks; one already there (by ``mark_key``: an earlier one of the
        same key in ``marks`` too) is left as it is."""
        ...

    async def marked(self, app_id: str, campaign_id: str, kind: MarkKind, channel_id: str) -> int:
        """How many marks of ``kind`` the campaign has on ``channel_id``."""
        ...


# ---------------------------------------------------------------- what is shown


@dataclass(frozen=True)
class RecipientState:
    status: RecipientStatus
    at: int
    code: str | None = None
    message: str | None = None


def receiver_states(report: ChunkReport) -> dict[str, Settled]:
    """The chunk's receivers, each with its state and since when: as reported, a
    pending one replaced by its settled state. A final state is never changed (a
    settled one is not changed back to pending by its chunk's report, read later)."""
    states = {r.uid: Settled(r, report.at) for r in report.receivers}
    for settled in report.settled:
        current = states.get(settled.state.uid)
        if settled.state.status != "pending" and (
            current is None or current.state.status == "pending"
        ):
            states[settled.state.uid] = settled
    return states


def chunk_counts(report: ChunkReport) -> tuple[int, int]:
    """(sent, failed) of a chunk as the campaign counts them, as the dispatcher's
    ``ChunkDispatched`` does: its final failures, and the others (sent, or dispatched
    with a delivery still queued)."""
    states = receiver_states(report)
    failed = sum(1 for s in states.values() if s.state.status == "failed")
    return len(states) - failed, failed


def recipient_states(reports: Sequence[ChunkReport]) -> dict[str, RecipientState]:
    return {
        uid: RecipientState(_SHOWN[s.state.status], s.at, s.state.code, s.state.message)
        for report in reports
        for uid, s in receiver_states(report).items()
    }


def tracked(recipient: Recipient, states: Mapping[str, RecipientState]) -> Recipient:
    """The recipient as its chunk's report says (unchanged while not reported)."""
    state = states.get(recipient.uid)
    if state is None:
        return recipient
    return replace(
        recipient,
        status=state.status,
        code=state.code,
        message=state.message,
        updated_at=max(recipient.updated_at, state.at),
    )


def summary(total: int, reports: Sequence[ChunkReport]) -> dict[RecipientStatus, int]:
    counts: dict[RecipientStatus, int] = dict.fromkeys(RECIPIENT_STATUSES, 0)
    for state in recipient_states(reports).values():
        counts[state.status] += 1
    counts["pending"] = max(0, total - sum(counts.values()))
    return counts


@dataclass(frozen=True)
class StepMetrics:
    """One channel step of the pinned template version (1-based, in its order)."""

    step: int
    channel_type: str
    channel_id: str | None
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0
    queued: int = 0


def step_totals(
    steps: Sequence[tuple[str, str | None]], reports: Sequence[ChunkReport]
) -> list[StepMetrics]:
    """The reports' tallies added per step: a chunk tallies the template's channels in
    its order, so the n-th tally is the n-th step (its channel id the one resolved)."""
    totals = [StepMetrics(i + 1, kind, channel_id) for i, (kind, channel_id) in enumerate(steps)]
    for report in reports:
        for i, tally in enumerate(report.channels[: len(totals)]):
            shown = totals[i]
            totals[i] = replace(
                shown,
                channel_id=tally.channel_id,
                sent=shown.sent + tally.sent,
                failed=shown.failed + tally.failed,
                queued=shown.queued + tally.queued,
            )
    return totals


def with_outcomes(step: StepMetrics, sent: int, failed: int) -> StepMetrics:
    """The step with the deliveries its workers ended (``sent`` and ``failed`` marks on
    its channel) moved from queued to sent or failed. An outcome that overtook its
    chunk's report counts as ended already; queued never goes below zero."""
    return replace(
        step,
        sent=step.sent + sent,
        failed=step.failed + failed,
        queued=max(0, step.queued - sent - failed),
    )


# ---------------------------------------------------------------- use cases

_RECIPIENT_KEYS: dict[str, SortKey[Recipient]] = {
    "updatedAt": SortKey(lambda r: r.updated_at),
    "createdAt": SortKey(lambda r: r.created_at),
}
RECIPIENT_SORTS = ListSorts(
    fields={"updatedAt": "updatedAt", "createdAt": "createdAt"},
    page_default=("createdAt", "asc"),
)


async def list_recipients(  # long: the audience and its reports, joined and paged
    campaigns: CampaignRepository,
    recipients: RecipientRepository,
    tracking: TrackingRepository,
    app_id: str,
    campaign_id: str,
    status: RecipientStatus | None,
    paging: PageRequest | CursorRequest,
) -> PageOf[Recipient] | CursorPage[Recipient]:
    """The audience (≤ 10,000) with its states: two equality queries (the recipients,
    a report per chunk), filtered, sorted and paged here."""
    await get_campaign(campaigns, app_id, campaign_id)
    states = recipient_states(await tracking.reports(app_id, campaign_id))
    found = [
        shown
        for shown in (tracked(r, states) for r in await recipients.list(app_id, campaign_id))
        if status is None or shown.status == status
    ]
    return paginate(found, paging, _RECIPIENT_KEYS, lambda r: r.recipient_id)


async def summarize(
    campaigns: CampaignRepository, tracking: TrackingRepository, app_id: str, campaign_id: str
) -> dict[RecipientStatus, int]:
    """Counts per state, from the reports alone (the audience is not read)."""
    campaign = await get_campaign(campaigns, app_id, campaign_id)
    return summary(campaign.total_targets, await tracking.reports(app_id, campaign_id))


async def sequence_metrics(
    campaigns: CampaignRepository,
    templates: TemplateRepository,
    tracking: TrackingRepository,
    app_id: str,
    campaign_id: str,
) -> list[StepMetrics]:
    """Per channel step of the pinned version: the reports' tallies, the deliveries
    the workers ended since, and the feed items' delivered and read marks on that
    step's channel."""
    campaign = await get_campaign(campaigns, app_id, campaign_id)
    template = await templates.get(app_id, campaign.template_id)
    versions = template.versions if template is not None else ()
    version = next((v for v in versions if v.version == campaign.template_version), None)
    steps = [(c.channel_type, c.channel_id) for c in version.channels] if version else []
    totals = step_totals(steps, await tracking.reports(app_id, campaign_id))
    return [await _marked_step(tracking, app_id, campaign_id, step) for step in totals]


_STEP_MARKS: tuple[MarkKind, ...] = ("delivered", "read", "sent", "failed")


async def _marked_step(
    tracking: TrackingRepository, app_id: str, campaign_id: str, step: StepMetrics
) -> StepMetrics:
    """The step with its channel's marks counted (one count per kind, together); a
    step whose channel is not resolved yet has none."""
    if step.channel_id is None:
        return step
    channel_id = step.channel_id
    delivered, read, sent, failed = await asyncio.gather(
        *(tracking.marked(app_id, campaign_id, kind, channel_id) for kind in _STEP_MARKS)
    )
    return with_outcomes(replace(step, delivered=delivered, read=read), sent, failed)
