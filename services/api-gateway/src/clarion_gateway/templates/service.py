"""Templates and their versions: the use cases and the repository they need.

Versions are embedded in the template document; every change is a read, a pure
transformation (``domain``, ``versions``) and a conditional save on the template's
revision, tried again when another request saved in between.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from clarion_shared.contracts.base import JsonObject
from clarion_shared.cursor import CursorPage, CursorRequest, ListSorts, PageRequest
from clarion_shared.errors import Invalid
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger

from ..channels.domain import channel_type_of
from ..paging import PageOf, SortKey, matches_search, matches_tags, paginate
from ..slugs import GENERATED_ID_RETRIES, candidate_ids, check_slug, slugify
from . import versions
from .content import check_content
from .domain import (
    ChannelInput,
    Template,
    TemplateBusy,
    TemplateChanges,
    TemplateChannel,
    TemplateDraft,
    TemplateIdTaken,
    TemplateLimits,
    TemplateNotFound,
    VariableDef,
    VariableInput,
    check_size,
    validate_channels,
    validate_schema,
)

log = get_logger(__name__)

# Saves tried before a change gives up to concurrent writers (409).
SAVE_ATTEMPTS = 5


class TemplateRepository(Resource, Protocol):
    async def insert(self, template: Template) -> bool:
        """False when the template id is taken in the app."""
        ...

    async def get(self, app_id: str, template_id: str) -> Template | None: ...

    async def list_for_app(self, app_id: str) -> list[Template]: ...

    async def replace(self, template: Template) -> bool:
        """Save ``template`` unless someone saved it since it was read (its
        ``revision`` moved); the stored revision goes up by one."""
        ...


@dataclass(frozen=True)
class TemplateQuery:
    status: str | None = None
    search: str | None = None
    tags: tuple[str, ...] = ()
    tag_match: Literal["any", "all"] = "any"
    template_category: str | None = None
    paging: PageRequest | CursorRequest = field(
        default_factory=lambda: PageRequest(1, 20, "updatedAt", "desc")
    )


TEMPLATE_SORTS = ListSorts(
    fields={"updatedAt": "updatedAt", "createdAt": "createdAt", "name": "name"},
    page_default=("updatedAt", "desc"),
)
_SORT_KEYS: dict[str, SortKey[Template]] = {
    "updatedAt": SortKey(lambda t: t.updated_at),
    "createdAt": SortKey(lambda t: t.created_at),
    "name": SortKey(lambda t: t.name, fold=True),
}


def _schema(items: Sequence[VariableInput] | None) -> tuple[VariableDef, ...] | None:
    return validate_schema(items) if items is not None else None


def _channels(
    items: Sequence[ChannelInput] | None, name: str, alternative_text: str | None
) -> tuple[TemplateChannel, ...] | None:
    return validate_channels(items, name, alternative_text) if items is not None else None


def _check_edit(
    template: Template,
    channels: tuple[TemplateChannel, ...] | None,
    schema: tuple[VariableDef, ...] | None,
    limits: TemplateLimits,
) -> None:
    """The newest version as an edit would leave it, within ``limits``."""
    newest = template.newest
    check_size(
        channels if channels is not None else newest.channels,
        schema if schema is not None else newest.variable_schema,
        limits,
    )


# ``/v3/campaigns/templates/categories`` is the category routes' path: a template with
# this id could not be read there.
RESERVED_IDS = frozenset({"categories"})


def new_template(
    app_id: str, draft: TemplateDraft, now: int, limits: TemplateLimits = TemplateLimits()
) -> Template:
    """The template ``draft`` asks for, validated (not stored yet)."""
    if draft.template_id is not None:
        template_id = check_slug(draft.template_id, "templateId")
        if template_id in RESERVED_IDS:
            raise Invalid(
                f"templateId {template_id!r} is reserved.",
                details=[{"field": "templateId", "message": "reserved"}],
            )
    else:
        template_id = slugify(draft.name, sep="_") or f"template_{secrets.token_hex(3)}"
        if template_id in RESERVED_IDS:
            template_id = f"{template_id}_template"
    schema = validate_schema(draft.variable_schema)
    channels = validate_channels(draft.channels, draft.name, draft.alternative_text)
    check_size(channels, schema, limits)
    status = draft.status or "draft"
    version = versions.new_version(
        1, channels, schema, now, status="approved" if status == "approved" else "draft"
    )
    return Template(
        app_id=app_id,
        template_id=template_id,
        name=draft.name,
        versions=(version,),
        created_at=now,
        updated_at=now,
        template_category=draft.template_category,
        label=draft.label,
        alternative_text=draft.alternative_text,
        tags=tuple(dict.fromkeys(draft.tags)),
        archived=status == "archived",
    )


async def insert_template(
    templates: TemplateRepository, template: Template, id_chosen: bool
) -> Template:
    """Store ``template``; a generated id that collides gets a suffix, a chosen one is
    the client's conflict (:class:`TemplateIdTaken`)."""
    ids = candidate_ids(template.template_id, "_")

    async def insert_next() -> Template:
        candidate = replace(template, template_id=next(ids))
        if not await templates.insert(candidate):
            raise TemplateIdTaken(candidate.template_id)
        return candidate

    retrying = AsyncRetrying(
        stop=stop_after_attempt(1 + (0 if id_chosen else GENERATED_ID_RETRIES)),
        retry=retry_if_exception_type(TemplateIdTaken),
        reraise=True,
    )
    inserted: Template = await retrying(insert_next)
    log.info("template.created", app_id=template.app_id, template_id=inserted.template_id)
    return inserted


async def create_template(
    templates: TemplateRepository,
    app_id: str,
    draft: TemplateDraft,
    now: int,
    limits: TemplateLimits = TemplateLimits(),
) -> Template:
    template = new_template(app_id, draft, now, limits)
    return await insert_template(templates, template, draft.template_id is not None)


async def get_template(templates: TemplateRepository, app_id: str, template_id: str) -> Template:
    template = await templates.get(app_id, template_id)
    if template is None:
        raise TemplateNotFound()
    return template


async def list_templates(
    templates: TemplateRepository, app_id: str, query: TemplateQuery
) -> PageOf[Template] | CursorPage[Template]:
    # Filtered in process: FerretDB pushes down no regex or $in, and an app's templates
    # are read with one equality query on app_id.
    found = [
        t
        for t in await templates.list_for_app(app_id)
        if (query.status is None or t.status == query.status)
        and (query.template_category is None or t.template_category == query.template_category)
        and matches_search(query.search, t.name, t.template_id)
        and matches_tags(t.tags, query.tags, query.tag_match)
    ]
    return paginate(found, query.paging, _SORT_KEYS, lambda t: t.template_id)


async def _change(
    templates: TemplateRepository,
    app_id: str,
    template_id: str,
    change: Callable[[Template], Template],
) -> Template:
    """Read, ``change`` and save the template; read again while another request wins
    the save (:class:`TemplateBusy` once ``SAVE_ATTEMPTS`` are spent)."""

    async def attempt() -> Template:
        current = await get_template(templates, app_id, template_id)
        updated = change(current)
        if updated == current:
            return current
        if not await templates.replace(updated):
            raise TemplateBusy()
        return replace(updated, revision=updated.revision + 1)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(SAVE_ATTEMPTS),
        retry=retry_if_exception_type(TemplateBusy),
        reraise=True,
    )
    return await retrying(attempt)


async def update_template(
    templates: TemplateRepository,
    app_id: str,
    template_id: str,
    changes: TemplateChanges,
    now: int,
    limits: TemplateLimits = TemplateLimits(),
) -> Template:
    schema = _schema(changes.variable_schema)

    def change(t: Template) -> Template:
        name = changes.name if changes.name is not None else t.name
        alternative_text = (
            changes.alternative_text if changes.alternative_text is not None else t.alternative_text
        )
        updated = replace(
            t,
            name=name,
            template_category=(
                changes.template_category
                if changes.template_category is not None
                else t.template_category
            ),
            label=changes.label if changes.label is not None else t.label,
            alternative_text=alternative_text,
            tags=tuple(dict.fromkeys(changes.tags)) if changes.tags is not None else t.tags,
        )
        channels = _channels(changes.channels, name, alternative_text)
        if versions.changes_content(t.newest, channels, schema):
            _check_edit(t, channels, schema, limits)
            updated = versions.edit_content(updated, now, channels, schema)
        if changes.status is not None:
            updated = versions.set_status(updated, changes.status, now)
        if updated != t:
            updated = replace(updated, updated_at=now)
        return updated

    template = await _change(templates, app_id, template_id, change)
    log.info("template.updated", app_id=app_id, template_id=template_id, status=template.status)
    return template


async def archive_template(
    templates: TemplateRepository, app_id: str, template_id: str, now: int
) -> Template:
    template = await _change(
        templates,
        app_id,
        template_id,
        lambda t: t if t.archived else versions.set_status(t, "archived", now),
    )
    log.info("template.archived", app_id=app_id, template_id=template_id)
    return template


async def add_version(
    templates: TemplateRepository,
    app_id: str,
    template_id: str,
    channels: Sequence[ChannelInput] | None,
    variable_schema: Sequence[VariableInput] | None,
    now: int,
    limits: TemplateLimits = TemplateLimits(),
) -> Template:
    """The next version: a draft copy of the newest, with the given changes."""
    schema = _schema(variable_schema)

    def change(t: Template) -> Template:
        new_channels = _channels(channels, t.name, t.alternative_text)
        _check_edit(t, new_channels, schema, limits)
        return versions.add_version(t, now, new_channels, schema)

    template = await _change(templates, app_id, template_id, change)
    log.info(
        "template.version_created",
        app_id=app_id,
        template_id=template_id,
        version=template.newest.version,
    )
    return template


async def put_channel_content(
    templates: TemplateRepository,
    app_id: str,
    template_id: str,
    channel_type: str,
    content: JsonObject,
    channel_id: str | None,
    now: int,
    limits: TemplateLimits = TemplateLimits(),
) -> Template:
    kind = channel_type_of(channel_type)
    if channel_id is not None:
        check_slug(channel_id, "channelId")
    update = TemplateChannel(kind, channel_id, check_content(kind, content))

    def change(t: Template) -> Template:
        channels = versions.with_channel_content(t.newest.channels, update)
        if not versions.changes_content(t.newest, channels, None):
            return t
        fields = [
            "content" if c.channel_type == kind else f"channels.{i}.content"
            for i, c in enumerate(channels)
        ]
        check_size(channels, t.newest.variable_schema, limits, fields, whole="content")
        return versions.edit_content(t, now, channels=channels)

    template = await _change(templates, app_id, template_id, change)
    log.info("template.channel_updated", app_id=app_id, template_id=template_id, channel_type=kind)
    return template
