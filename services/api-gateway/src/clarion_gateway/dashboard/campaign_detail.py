"""The Campaign detail page's data, read through the use cases of the public routes:
the campaign and its recipients per state as ``GET /v3/campaigns/campaigns/{id}/events``
reads them (``live.service.campaign_reader``: ``GET .../{id}`` and
``.../recipients/summary``), the recipients as ``GET .../{id}/recipients`` lists them
and the channels as ``.../sequence-metrics`` counts them (``campaigns.tracking``).

The live part of the page is that stream's snapshots (``live.service.watch``) rendered
as HTML fragments, sent as server-sent events for htmx's sse extension to swap in.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from clarion_shared.cursor import PageRequest
from clarion_shared.sse import encode_event

from ..campaigns.domain import RECIPIENT_STATUSES, Recipient, RecipientStatus
from ..campaigns.models import CampaignPublic, RecipientSummary
from ..campaigns.tracking import RECIPIENT_SORTS
from ..live.models import CampaignProgress, Snapshot
from ..paging import PageOf
from .users import DEFAULT_PER_PAGE, PER_PAGE_CHOICES

# The states a campaign can be cancelled in (``campaigns.domain.cancelled``).
CANCELLABLE = frozenset({"draft", "scheduled"})
ID_MAX_LENGTH = 200


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        number = int(value or "")
    except ValueError:
        return default
    return min(max(number, low), high)


@dataclass(frozen=True)
class RecipientsFilter:
    """The recipients table's query string: ``status``, ``page`` and ``perPage``."""

    status: RecipientStatus | None = None
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> RecipientsFilter:
        """Lenient: a value the page cannot use is dropped, never an error page."""
        wanted = params.get("status", "")
        status = next((s for s in RECIPIENT_STATUSES if s == wanted), None)
        return cls(
            status=status,
            page=_int(params.get("page"), 1, 1, 100_000),
            per_page=_int(params.get("perPage"), DEFAULT_PER_PAGE, 1, PER_PAGE_CHOICES[-1]),
        )

    def paging(self) -> PageRequest:
        """The page of ``GET .../recipients?page=&perPage=`` (its default order)."""
        sort, order = RECIPIENT_SORTS.page_default
        return PageRequest(self.page, self.per_page, sort, order)

    def query(self, **changes: int | str | None) -> str:
        """This table's query string with ``changes`` (paging links, live refreshes)."""
        shown = replace(self, **changes)  # type: ignore[arg-type]
        values: dict[str, str | int] = {"page": shown.page, "perPage": shown.per_page}
        if shown.status:
            values = {"status": shown.status, **values}
        return urlencode(values)


@dataclass(frozen=True)
class RecipientsPage:
    """One page of the recipients table."""

    items: list[Recipient]
    total: int
    page: int
    pages: int

    @classmethod
    def of(cls, found: PageOf[Recipient]) -> RecipientsPage:
        pages = max(1, -(-found.total // found.page.per_page))
        return cls(found.items, found.total, found.page.number, pages)


@dataclass(frozen=True)
class LiveView:
    """What the live part shows: a snapshot of the campaign's stream."""

    campaign: CampaignPublic
    recipients: RecipientSummary
    final: bool

    @classmethod
    def of(cls, snapshot: Snapshot) -> LiveView:
        progress = snapshot.data
        assert isinstance(progress, CampaignProgress)  # the campaign reader's snapshots
        return cls(progress.campaign, progress.recipients, snapshot.final)

    @property
    def done(self) -> int:
        """Recipients final: completed (sent) or failed."""
        return self.recipients.completed + self.recipients.failed

    @property
    def percent(self) -> int:
        total = self.recipients.total
        return self.done * 100 // total if total else 0

    @property
    def cancellable(self) -> bool:
        return self.campaign.status in CANCELLABLE

    @property
    def status_words(self) -> str:
        return self.campaign.status.replace("_", " ")


async def fragments(
    snapshots: AsyncGenerator[Snapshot, None],
    first: Snapshot,
    render: Callable[[Snapshot], str],
) -> AsyncIterator[str]:
    """``first``, then the rest of ``snapshots``, rendered and sent as server-sent
    events: ``progress`` for each, ``done`` for the final one, then the end (as the
    public stream, ``live.service.sse_events``, sends its JSON)."""
    number = 0
    snapshot: Snapshot | None = first
    try:
        while snapshot is not None:
            number += 1
            kind = "done" if snapshot.final else "progress"
            yield encode_event(kind, render(snapshot), str(number))
            if snapshot.final:
                return
            snapshot = await anext(snapshots, None)
    finally:
        await snapshots.aclose()  # the watch's subscription ends with the stream
