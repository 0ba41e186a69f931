"""The Campaign detail page's data, read through the use cases of the public routes:
the campaign and its recipients per state as ``GET /v3/campaigns/campaigns/{id}/events``
reads them (``live.service.campaign_reader``: ``GET .../{id}`` and
``.../recipients/summary``), the recipients as ``GET .../{id}/recipients`` lists them
and the channels as ``.../sequence-metrics`` counts them (``campaigns.tracking``).

The live part of the page is that stream's snapshots (``live.service.watch``) rendered
as HTML fragments, sent as server-sent events (``streams``) for htmx's sse extension to
swap in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from clarion_shared.cursor import PageRequest

from ..campaigns.domain import RECIPIENT_STATUSES, Recipient, RecipientStatus
from ..campaigns.models import CampaignPublic, RecipientSummary
from ..campaigns.tracking import RECIPIENT_SORTS
from ..live.models import CampaignProgress, Snapshot
from ..paging import PageOf
from .forms import DEFAULT_PER_PAGE, PageQuery, one_of, page_count, page_fields

# The states a campaign can be cancelled in (``campaigns.domain.cancelled``).
CANCELLABLE = frozenset({"draft", "scheduled"})
ID_MAX_LENGTH = 200


@dataclass(frozen=True)
class RecipientsFilter(PageQuery):
    """The recipients table's query string: ``status``, ``page`` and ``perPage``."""

    status: RecipientStatus | None = None
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> RecipientsFilter:
        """Lenient: a value the page cannot use is dropped, never an error page."""
        return cls(status=one_of(params.get("status"), RECIPIENT_STATUSES), **page_fields(params))

    def paging(self) -> PageRequest:
        """The page of ``GET .../recipients?page=&perPage=`` (its default order)."""
        sort, order = RECIPIENT_SORTS.page_default
        return PageRequest(self.page, self.per_page, sort, order)


@dataclass(frozen=True)
class RecipientsPage:
    """One page of the recipients table."""

    items: list[Recipient]
    total: int
    page: int
    pages: int

    @classmethod
    def of(cls, found: PageOf[Recipient]) -> RecipientsPage:
        pages = page_count(found.total, found.page.per_page)
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
