"""The Templates pages' reads and their one write: the list's filters as
``GET /v3/campaigns/templates`` takes them (``templates.service.list_templates``), a
template's versions, the live preview, and approval as
``PUT /v3/campaigns/templates/{id} {status: approved}`` does it
(``templates.categorized.update_template``).

The preview renders exactly as the User detail's send preview does (``sending``:
``clarion_shared.templating``, the dispatcher's values, defaults and escaping), for any
version rather than the approved one only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from clarion_shared.cursor import PageRequest
from clarion_shared.errors import DomainError
from clarion_shared.templating import MissingVariables

from ..categories.service import CategoryRepository
from ..paging import PageOf
from ..templates import categorized
from ..templates.domain import Template, TemplateChanges, TemplateLimits, TemplateVersion
from ..templates.service import TemplateQuery, TemplateRepository, list_templates

# The send preview's rendering, shared rather than written twice.
from .forms import DEFAULT_PER_PAGE, PageQuery, bounded_int, one_of, page_count, page_fields, text
from .sending import (
    ChannelPreview,
    VariableField,
    as_text,
    render_channels,
    typed_values,
    variable_specs,
)

STATUSES = ("draft", "approved", "archived")


@dataclass(frozen=True)
class TemplatesFilter(PageQuery):
    """The Templates page's query string, as typed: what the form shows back."""

    search: str = ""
    status: str = ""
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> TemplatesFilter:
        """Lenient: a value the page cannot use is dropped, never an error."""
        return cls(
            search=text(params, "search", 100),
            status=one_of(params.get("status"), STATUSES) or "",
            **page_fields(params),
        )

    @property
    def filtered(self) -> bool:
        return bool(self.search or self.status)

    def query(self) -> TemplateQuery:
        """``GET /v3/campaigns/templates``'s query: newest changes first."""
        return TemplateQuery(
            status=self.status or None,
            search=self.search or None,
            paging=PageRequest(self.page, self.per_page, "updatedAt", "desc"),
        )


@dataclass(frozen=True)
class Listing:
    """One page of the app's templates."""

    templates: list[Template]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return page_count(self.total, self.per_page)


async def templates_page(
    templates: TemplateRepository, app_id: str, wanted: TemplatesFilter
) -> Listing:
    found = await list_templates(templates, app_id, wanted.query())
    assert isinstance(found, PageOf)  # a page was asked for, not a cursor
    return Listing(found.items, found.total, found.page.number, found.page.per_page)


def version_of(template: Template, wanted: str | None) -> TemplateVersion | None:
    """The version ``wanted`` names (the newest when absent); None when there is none."""
    if not wanted:
        return template.newest
    number = bounded_int(wanted, 0, 0, 1_000_000)
    return next((v for v in template.versions if v.version == number), None)


def approvable(template: Template, version: TemplateVersion) -> bool:
    """Approval (the API's) approves the newest version: a draft one, of a template
    that is not archived (approving would also restore it; that stays in the API)."""
    return not template.archived and version == template.newest and version.status == "draft"


@dataclass(frozen=True)
class Preview:
    """The preview of one version with the values entered: its inputs, and the
    content per channel or what keeps it from rendering, in words."""

    variables: list[VariableField]
    channels: list[ChannelPreview] = field(default_factory=list)
    problem: str | None = None


def preview(version: TemplateVersion, entered: Mapping[str, str]) -> Preview:
    variables = [
        VariableField(v.key, v.type, v.required, entered.get(v.key, ""), v.name, v.default_value)
        for v in version.variable_schema
    ]
    specs = variable_specs(version)
    values, problems = typed_values(specs, entered)
    if problems:
        return Preview(variables, problem=" ".join(problems))
    try:
        return Preview(variables, render_channels(version, specs, values))
    except MissingVariables as exc:
        return Preview(variables, problem=f"Fill in {', '.join(exc.keys)} to see the content.")


def raw_content(version: TemplateVersion) -> list[ChannelPreview]:
    """Each channel's content as stored, tokens and all."""
    return [
        ChannelPreview(
            c.channel_type,
            [(key, as_text(value)) for key, value in c.content.items()],
        )
        for c in version.channels
    ]


@dataclass(frozen=True)
class Approval:
    """What approving needs: the repositories and limits of the public route."""

    templates: TemplateRepository
    categories: CategoryRepository
    limits: TemplateLimits


async def approve(
    approval: Approval, template: Template, version_number: int, now: int
) -> Template | str:
    """Approve ``version_number``, the newest draft version the operator saw; the
    template as saved, or why not, in words."""
    newest = template.newest
    if newest.version != version_number or not approvable(template, newest):
        return (
            f"Version {version_number} cannot be approved: only the newest version, while "
            "it is a draft, can be. Reload the page to see the template as it is now."
        )
    try:
        return await categorized.update_template(
            approval.templates,
            approval.categories,
            template.app_id,
            template.template_id,
            TemplateChanges(status="approved"),
            now,
            approval.limits,
        )
    except DomainError as exc:
        return exc.message
