"""The Campaigns pages' data, read and written through the use cases of the public routes:
the list as ``GET /v3/campaigns/campaigns`` reads it (``campaigns.service.list_campaigns``),
a draft created as ``POST .../campaigns`` creates it (``create_campaign``, on the same
announcing templates), and the send and schedule as ``POST .../{id}/send`` and
``.../schedule`` run them. The audience's steps are in ``campaign_audience``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from clarion_shared.cursor import PageRequest
from clarion_shared.errors import DomainError

from ..campaigns.audience_csv import AudienceCsvFailed
from ..campaigns.domain import CAMPAIGN_STATUSES, Campaign, CampaignStatus
from ..campaigns.dry_run_runner import DryRunRunner
from ..campaigns.imports import ImportRunner
from ..campaigns.service import CampaignDraft, CampaignQuery
from ..errors import ERRORS
from ..paging import PageOf
from ..proxies.peers import PeerUnavailable
from ..templates.domain import Template
from ..templates.service import TemplateRepository
from .forms import DEFAULT_PER_PAGE, PageQuery, bounded_int, one_of, page_count, page_fields, text
from .web import PREFIX, Member, PageProblem, editors_only

NAME_MAX_LENGTH = 200
# What the page says of a failure: the use cases' own errors, a CSV refused whole, a
# peer out of reach (``errors.ERRORS`` words them as the API does).
Refusal = (DomainError, AudienceCsvFailed, PeerUnavailable)


def campaigns_url(app_id: str) -> str:
    return f"{PREFIX}/apps/{app_id}/campaigns"


def detail_url(app_id: str, campaign_id: str) -> str:
    """The Campaign detail page (``routes_campaign_detail``)."""
    return f"{campaigns_url(app_id)}/{campaign_id}"


def audience_url(app_id: str, campaign_id: str) -> str:
    return f"{detail_url(app_id, campaign_id)}/audience"


def no_such_campaign(campaign_id: str) -> PageProblem:
    # Another app's campaign looks the same as one that does not exist (never 403).
    return PageProblem(404, "No such campaign", f"This app has no campaign {campaign_id}.")


def may_change(member: Member) -> None:
    """Campaign actions are for editors and owners: a viewer is told so in words."""
    editors_only(member, "viewers can read campaigns but not create, change or send them.")


def in_words(exc: Exception) -> str:
    """What went wrong, as the API's error message says it (its developer's detail too,
    unless that speaks of API calls the page does not make)."""
    if isinstance(exc, AudienceCsvFailed):
        return exc.message
    error = ERRORS.api_error(exc)
    if error is None:
        return str(exc)
    detail = error.dev_message
    if detail and detail != error.message and "POST " not in detail and "/v3" not in detail:
        return f"{error.message} {detail}"
    return error.message


def status_of(exc: Exception) -> int:
    """The HTTP status the API answers ``exc`` with (a page shows it too)."""
    error = ERRORS.api_error(exc)
    return error.status if error is not None else 500


@dataclass(frozen=True)
class CampaignsFilter(PageQuery):
    """The Campaigns list's query string: ``status``, ``search``, ``page``, ``perPage``."""

    status: CampaignStatus | None = None
    search: str = ""
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> CampaignsFilter:
        """Lenient: a value the page cannot use is dropped, never an error page."""
        return cls(
            status=one_of(params.get("status"), CAMPAIGN_STATUSES),
            search=text(params, "search", 100),
            **page_fields(params),
        )

    @property
    def filtered(self) -> bool:
        return bool(self.status or self.search)

    def query(self) -> CampaignQuery:
        """``GET /v3/campaigns/campaigns?status=&search=&page=&perPage=`` (newest change
        first, the list's default order)."""
        page = PageRequest(self.page, self.per_page, "updatedAt", "desc")
        return CampaignQuery(status=self.status, search=self.search or None, paging=page)


@dataclass(frozen=True)
class CampaignRow:
    campaign: Campaign
    template_name: str | None  # None: the template is gone or archived

    @property
    def when(self) -> tuple[str, int | None]:
        """What the "When" column says: scheduled for, or sent at."""
        c = self.campaign
        if c.status == "scheduled":
            return "Scheduled for", c.scheduled_at
        if c.started_at is not None:
            return "Sent", c.started_at
        return "", None


@dataclass(frozen=True)
class CampaignsPage:
    rows: list[CampaignRow]
    total: int
    page: int
    pages: int


def campaigns_page(found: PageOf[Campaign], names: Mapping[str, str]) -> CampaignsPage:
    return CampaignsPage(
        rows=[CampaignRow(c, names.get(c.template_id)) for c in found.items],
        total=found.total,
        page=found.page.number,
        pages=page_count(found.total, found.page.per_page),
    )


@dataclass(frozen=True)
class TemplateChoice:
    """A template a campaign can pin: its approved versions, newest first."""

    template_id: str
    name: str
    versions: tuple[int, ...]


def _choice(template: Template) -> TemplateChoice | None:
    approved = tuple(v.version for v in reversed(template.versions) if v.status == "approved")
    if template.archived or not approved:
        return None
    return TemplateChoice(template.template_id, template.name, approved)


def template_choices(templates: list[Template]) -> list[TemplateChoice]:
    return [c for t in templates if (c := _choice(t)) is not None]


@dataclass
class NewCampaignForm:
    """What the "New campaign" form shows, and what is wrong with it."""

    choices: list[TemplateChoice]
    name: str = ""
    template_id: str = ""
    version: str = ""  # "" is the newest approved version
    errors: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, choices: list[TemplateChoice], posted: Mapping[str, str]) -> NewCampaignForm:
        chosen = posted.get("templateId", "").strip()
        return cls(
            choices=choices,
            name=posted.get("name", "").strip()[: NAME_MAX_LENGTH + 1],
            template_id=chosen if any(c.template_id == chosen for c in choices) else "",
            version=posted.get("templateVersion", "").strip(),
        )

    @property
    def chosen(self) -> TemplateChoice | None:
        return next((c for c in self.choices if c.template_id == self.template_id), None)

    def draft(self) -> CampaignDraft | None:
        """The draft to create; None (and ``errors`` said in words) when it cannot be."""
        chosen = self.chosen
        if not self.name:
            self.errors.append("Name the campaign.")
        elif len(self.name) > NAME_MAX_LENGTH:
            self.errors.append(f"The name is longer than {NAME_MAX_LENGTH} characters.")
        if chosen is None:
            self.errors.append("Choose a template.")
            return None
        version = chosen.versions[0] if not self.version else bounded_int(self.version, 0, 0, 10**9)
        if version not in chosen.versions:
            self.errors.append(f"Choose an approved version of {chosen.name}.")
        if self.errors:
            return None
        return CampaignDraft(self.name, chosen.template_id, version)


def send_at(value: str, now: int) -> int | str:
    """A "Send at" input (``datetime-local``, read as UTC) as Unix seconds, or what is
    wrong with it in words."""
    text = value.strip()
    if not text:
        return "Choose when to send (Send at, UTC)."
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return "Send at must be a date and time (YYYY-MM-DDTHH:MM, UTC)."
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    at = int(moment.timestamp())
    if at <= now:
        shown = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M")
        return f"Send at must be in the future (it is {shown} UTC now)."
    return at


def send_at_value(at: int) -> str:
    """A time as a ``datetime-local`` input's value (UTC)."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M")


async def template_name(templates: TemplateRepository, campaign: Campaign) -> str | None:
    template = await templates.get(campaign.app_id, campaign.template_id)
    return template.name if template is not None else None


async def settled(
    runner: ImportRunner | DryRunRunner, run_id: str, timeout_s: float | None
) -> bool:
    """Whether the background run ``run_id`` (a CSV import or dry run) is over within
    ``timeout_s``; at once True when it does not run in this process."""
    return await runner.wait(run_id, timeout_s)
