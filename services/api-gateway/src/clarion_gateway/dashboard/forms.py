"""What the pages' filter forms share: a query string or form read leniently (a value a
page cannot use is dropped, never an error page), paging, dates as UTC days, the
paging links' query strings, and the app's templates the Template selects offer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, replace
from datetime import UTC, date, datetime, time
from typing import Any, ClassVar, TypedDict, TypeVar
from urllib.parse import urlencode

from clarion_shared.cursor import PageRequest

from ..paging import PageOf
from ..templates.domain import Template
from ..templates.service import TemplateQuery, TemplateRepository, list_templates

PER_PAGE_CHOICES = (10, 20, 50, 100)
DEFAULT_PER_PAGE = 20
MAX_PAGE = 100_000
_MAX_TEMPLATES = 500
# A filter's fields by their query-string names, where they differ (the API's names).
_PARAMS = {
    "per_page": "perPage",
    "created_after": "createdAfter",
    "created_before": "createdBefore",
    "template": "templateId",
}

S = TypeVar("S", bound=str)


def texts(items: Mapping[str, Any]) -> dict[str, str]:
    """A query string or form as text values (files dropped)."""
    return {k: v for k, v in items.items() if isinstance(v, str)}


def text(params: Mapping[str, str], name: str, limit: int) -> str:
    """A typed value, trimmed and cut to ``limit`` characters."""
    return params.get(name, "").strip()[:limit]


def bounded_int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        number = int(value or "")
    except ValueError:
        return default
    return min(max(number, low), high)


def one_of(value: str | None, choices: Iterable[S]) -> S | None:
    """``value`` when it is one of ``choices``."""
    return next((c for c in choices if c == value), None)


class PageFields(TypedDict):
    page: int
    per_page: int


def page_fields(params: Mapping[str, str]) -> PageFields:
    """``page`` and ``perPage``, kept within what the pages offer."""
    return {
        "page": bounded_int(params.get("page"), 1, 1, MAX_PAGE),
        "per_page": bounded_int(params.get("perPage"), DEFAULT_PER_PAGE, 1, PER_PAGE_CHOICES[-1]),
    }


def page_count(total: int, per_page: int) -> int:
    """How many pages ``total`` items fill (one, when there are none)."""
    return max(1, -(-total // per_page))


def day_seconds(value: str, end: bool) -> int | None:
    """A date input's value as Unix seconds: the day's first second, or (``end``) its
    last, so that "Created before" includes the day. Days are UTC days."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    moment = datetime.combine(day, time.max if end else time.min, UTC)
    return int(moment.timestamp())


def created_range(after: str, before: str) -> tuple[int | None, int | None]:
    """ "Created after" and "Created before" as Unix seconds, both days included; None
    where there is no date (or no valid one: ``created_problems`` says so)."""
    return (
        day_seconds(after, end=False) if after else None,
        day_seconds(before, end=True) if before else None,
    )


def created_problems(after: str, before: str) -> list[str]:
    """What is wrong with "Created after" and "Created before", in words."""
    return [
        f"{label} must be a date (YYYY-MM-DD)."
        for label, value in (("Created after", after), ("Created before", before))
        if value and day_seconds(value, end=False) is None
    ]


class PageQuery:
    """A filter (a frozen dataclass) whose fields are its page's query string."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    def page_query(self, **changes: int | str | None) -> str:
        """This page's own query string with ``changes`` (paging links, redirects):
        the fields in their order, by their query-string names, empty ones left out."""
        values = asdict(replace(self, **changes))
        return urlencode({_PARAMS.get(k, k): v for k, v in values.items() if v not in ("", None)})


async def app_templates(templates: TemplateRepository, app_id: str) -> list[Template]:
    """The app's templates by name, as ``GET /v3/campaigns/templates`` lists them."""
    query = TemplateQuery(paging=PageRequest(1, _MAX_TEMPLATES, "name", "asc"))
    found = await list_templates(templates, app_id, query)
    return found.items if isinstance(found, PageOf) else []
