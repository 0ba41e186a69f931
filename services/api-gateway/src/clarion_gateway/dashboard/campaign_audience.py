"""A draft campaign's audience on the dashboard, through the use cases of the public
routes: users picked with the Users page's filters (``users.UsersFilter``, read as
``GET /v3/users`` reads them) and added as ``POST .../{id}/recipients`` adds them
(``campaigns.audience.add_users``, or ``add_matching`` for every match), and a CSV
stored, dry-run and imported by the gateway's runners as ``recipients/csv?dryRun=true``
and ``import-csv`` do (``campaigns.dry_runs``, ``campaigns.imports``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from pydantic import JsonValue, ValidationError
from starlette.datastructures import UploadFile

from clarion_shared.api import Paged
from clarion_shared.csv_export import csv_line
from clarion_shared.errors import NotFound
from clarion_shared.ids import now
from clarion_shared.public.users import UserPublic
from clarion_shared.sse import encode_event

from ..audit.service import Auditor
from ..campaigns import dry_runs, imports
from ..campaigns.audience import AudienceChange
from ..campaigns.domain import RecipientRejected
from ..campaigns.dry_run_routes import REJECTED_CSV_HEADER
from ..campaigns.dry_runs import DryRunView
from ..campaigns.imports import CsvImport, ImportContext
from ..campaigns.models import AudienceFilter
from ..campaigns.uploads import CHUNK_BYTES
from .peer_reads import read_or_note
from .users import DirectoryUsers, UsersFilter, role_choices
from .web import Member

# Rejected rows an import's outcome lists on the page (it keeps up to 1,000).
SHOWN_REJECTED = 100


@dataclass(frozen=True)
class AddOutcome:
    """What an addition did, for the page to say."""

    added: int
    duplicates: int
    rejected: list[RecipientRejected]
    total: int

    @classmethod
    def of(cls, change: AudienceChange) -> AddOutcome:
        return cls(change.added, change.duplicates, change.rejected, change.campaign.total_targets)


@dataclass
class Picker:
    """ "Pick users": the Users filters, one page of users, what went wrong."""

    filter: UsersFilter
    in_audience: set[str]  # shown as added, without a checkbox
    page: Paged[UserPublic] | None = None
    roles: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def hidden_fields(self) -> list[tuple[str, str]]:
        """The filter and page as form fields: a post re-shows the same page."""
        return parse_qsl(self.filter.page_query())


async def picker(
    users: DirectoryUsers, app_id: str, wanted: UsersFilter, in_audience: set[str]
) -> Picker:
    """The users ``wanted`` matches (a page), and the roles the Role select offers."""
    found = Picker(wanted, in_audience, problems=wanted.problems())
    found.page = await read_or_note(users.page(app_id, wanted), found.problems)
    known = await users.known_roles(app_id)  # as on the Users page
    found.roles = role_choices(known, found.page.data if found.page else [], wanted.role)
    return found


def matching_filter(wanted: UsersFilter) -> dict[str, Any]:
    """``wanted`` as the ``filter`` of ``POST .../recipients``: every user it matches."""
    query = dict(parse_qsl(wanted.directory_query()))
    chosen = {k: v for k, v in query.items() if k not in ("page", "perPage")}
    return AudienceFilter.model_validate(chosen).filters()


def filter_problem(exc: ValidationError) -> str:
    return "The filters are not valid: " + "; ".join(str(e["msg"]) for e in exc.errors())


def user_ids(values: list[Any]) -> list[str]:
    """The checked boxes' uids, in order, each once."""
    return list(dict.fromkeys(v for v in values if isinstance(v, str) and v))


def chosen_file(value: object) -> UploadFile | None:
    """The form's file, when one was chosen (a browser sends an empty part otherwise)."""
    if isinstance(value, UploadFile) and value.filename:
        return value
    return None


async def file_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    """The uploaded file (spooled by the form parser) in the store's chunk size."""
    while data := await upload.read(CHUNK_BYTES):
        yield data


async def read_dry_run(
    context: ImportContext, app_id: str, campaign_id: str, dry_run_id: str
) -> DryRunView | None:
    """The dry run as ``GET .../dry-runs/{id}`` reads it; None when it is gone."""
    try:
        return await dry_runs.dry_run_status(context, app_id, campaign_id, dry_run_id, now())
    except NotFound:
        return None


async def read_import(
    context: ImportContext, app_id: str, campaign_id: str, import_id: str
) -> CsvImport | None:
    """The import as ``GET .../import-status`` reads it, if ``import_id`` is still the
    campaign's latest."""
    try:
        job = await imports.import_status(context, app_id, campaign_id)
    except NotFound:
        return None
    return job if job.import_id == import_id else None


async def rejected_csv(pages: AsyncIterator[list[RecipientRejected]]) -> AsyncIterator[str]:
    """The rejected rows as ``GET .../dry-runs/{id}/rejected.csv`` writes them."""
    yield csv_line(REJECTED_CSV_HEADER)
    async for page in pages:
        yield "".join(csv_line((r.row, r.uid, r.code, r.message)) for r in page)


async def done_event(
    wait: Callable[[], Awaitable[bool]], render: Callable[[], Awaitable[str]]
) -> AsyncIterator[str]:
    """One server-sent event, ``done``, with the HTML ``render`` gives once ``wait``
    is over: the result the page swaps in (htmx's sse extension), then the end."""
    await wait()
    yield encode_event("done", await render())


async def audit_audience(
    auditor: Auditor, member: Member, campaign_id: str, via: str, **detail: JsonValue
) -> None:
    """Recipients added to a draft ``via`` a CSV import, picked users or a filter."""
    await auditor.record(
        member.operator.email,
        member.app.app_id,
        "campaign.audience",
        campaign_id,
        {"via": via, **detail},
    )
