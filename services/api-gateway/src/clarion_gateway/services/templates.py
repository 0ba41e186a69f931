"""Templates and their versions.

Versions are embedded in the template document; every change is a read, a pure
transformation (``domain``) and a conditional save on the template's revision, retried
a few times when another request saved in between.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from clarion_shared.errors import ApiError
from clarion_shared.logging import get_logger

from .. import domain
from ..models import (
    TemplateChannelContentUpdate,
    TemplateChannelIn,
    TemplateCreate,
    TemplateUpdate,
    TemplateVersionCreate,
    VariableSpecIn,
    schema_inputs,
)
from ..ports import TemplateRepository

log = get_logger(__name__)

_SAVE_ATTEMPTS = 5


@dataclass(frozen=True)
class TemplateQuery:
    status: str | None = None
    search: str | None = None
    tags: tuple[str, ...] = ()
    tag_match: Literal["any", "all"] = "any"
    template_category: str | None = None
    sort: Literal["updatedAt", "createdAt", "name"] = "updatedAt"
    order: Literal["asc", "desc"] = "desc"
    page: domain.Page = field(default_factory=lambda: domain.Page(1, 20))


def _channels(
    items: list[TemplateChannelIn], name: str, alternative_text: str | None
) -> tuple[domain.TemplateChannel, ...]:
    return domain.validate_channels([i.to_input() for i in items], name, alternative_text)


def _schema(items: list[VariableSpecIn | str]) -> tuple[domain.VariableDef, ...]:
    return domain.validate_schema(schema_inputs(items))


async def create_template(
    templates: TemplateRepository, app_id: str, body: TemplateCreate, now: int
) -> domain.Template:
    given = body.template_id is not None
    template_id = (
        domain.check_slug(body.template_id, "templateId")
        if body.template_id is not None
        else domain.slugify(body.name, sep="_") or f"template_{secrets.token_hex(3)}"
    )
    schema = _schema(body.variable_schema)
    channels = _channels(body.channels, body.name, body.alternative_text)
    status = body.status or "draft"
    version = domain.new_version(
        1, channels, schema, now, status="approved" if status == "approved" else "draft"
    )
    template = domain.Template(
        app_id=app_id,
        template_id=template_id,
        name=body.name,
        versions=(version,),
        created_at=now,
        updated_at=now,
        template_category=body.template_category,
        label=body.label,
        alternative_text=body.alternative_text,
        tags=tuple(dict.fromkeys(body.tags)),
        archived=status == "archived",
    )
    inserted = await templates.insert(template)
    attempts = 0
    while not inserted and not given and attempts < 5:
        attempts += 1
        template = replace(template, template_id=f"{template_id[:57]}_{secrets.token_hex(3)}")
        inserted = await templates.insert(template)
    if not inserted:
        raise domain.conflict(
            f"A template with templateId {template.template_id!r} already exists.",
            details={"templateId": template.template_id},
        )
    log.info("template.created", app_id=app_id, template_id=template.template_id)
    return template


async def get_template(
    templates: TemplateRepository, app_id: str, template_id: str
) -> domain.Template:
    template = await templates.get(app_id, template_id)
    if template is None:
        raise domain.not_found("Template")
    return template


async def list_templates(
    templates: TemplateRepository, app_id: str, query: TemplateQuery
) -> domain.PageOf[domain.Template]:
    # Filtered in process: FerretDB pushes down no regex or $in, and an app's templates
    # are read with one equality query on appId.
    found = [
        t
        for t in await templates.list_for_app(app_id)
        if (query.status is None or t.status == query.status)
        and (query.template_category is None or t.template_category == query.template_category)
        and domain.matches_search(query.search, t.name, t.template_id)
        and domain.matches_tags(t.tags, query.tags, query.tag_match)
    ]
    if query.sort == "createdAt":
        found.sort(key=lambda t: (t.created_at, t.template_id))
    elif query.sort == "name":
        found.sort(key=lambda t: (t.name.casefold(), t.template_id))
    else:
        found.sort(key=lambda t: (t.updated_at, t.template_id))
    if query.order == "desc":
        found.reverse()
    return domain.PageOf(query.page.slice(found), len(found), query.page)


async def _change(
    templates: TemplateRepository,
    app_id: str,
    template_id: str,
    change: Callable[[domain.Template], domain.Template],
) -> domain.Template:
    for _ in range(_SAVE_ATTEMPTS):
        current = await get_template(templates, app_id, template_id)
        updated = change(current)
        if updated == current:
            return current
        if await templates.replace(updated):
            return replace(updated, revision=updated.revision + 1)
    raise ApiError(
        409, "ERR_CONFLICT", "The template is being changed by another request; try again."
    )


async def update_template(
    templates: TemplateRepository, app_id: str, template_id: str, body: TemplateUpdate, now: int
) -> domain.Template:
    schema = _schema(body.variable_schema) if body.variable_schema is not None else None

    def change(t: domain.Template) -> domain.Template:
        name = body.name if body.name is not None else t.name
        alternative_text = (
            body.alternative_text if body.alternative_text is not None else t.alternative_text
        )
        updated = replace(
            t,
            name=name,
            template_category=(
                body.template_category
                if body.template_category is not None
                else t.template_category
            ),
            label=body.label if body.label is not None else t.label,
            alternative_text=alternative_text,
            tags=tuple(dict.fromkeys(body.tags)) if body.tags is not None else t.tags,
        )
        channels = (
            _channels(body.channels, name, alternative_text) if body.channels is not None else None
        )
        if _content_changes(t.newest, channels, schema):
            updated = domain.edit_content(updated, now, channels, schema)
        if body.status is not None:
            updated = domain.set_status(updated, body.status, now)
        if updated != t:
            updated = replace(updated, updated_at=now)
        return updated

    template = await _change(templates, app_id, template_id, change)
    log.info("template.updated", app_id=app_id, template_id=template_id, status=template.status)
    return template


def _content_changes(
    newest: domain.TemplateVersion,
    channels: tuple[domain.TemplateChannel, ...] | None,
    schema: tuple[domain.VariableDef, ...] | None,
) -> bool:
    """Whether an edit changes the newest version (sending the same content back to an
    approved template must not create a version)."""
    return (channels is not None and channels != newest.channels) or (
        schema is not None and schema != newest.variable_schema
    )


async def archive_template(
    templates: TemplateRepository, app_id: str, template_id: str, now: int
) -> domain.Template:
    template = await _change(
        templates,
        app_id,
        template_id,
        lambda t: t if t.archived else domain.set_status(t, "archived", now),
    )
    log.info("template.archived", app_id=app_id, template_id=template_id)
    return template


async def add_version(
    templates: TemplateRepository,
    app_id: str,
    template_id: str,
    body: TemplateVersionCreate,
    now: int,
) -> domain.Template:
    schema = _schema(body.variable_schema) if body.variable_schema is not None else None

    def change(t: domain.Template) -> domain.Template:
        channels = (
            _channels(body.channels, t.name, t.alternative_text)
            if body.channels is not None
            else None
        )
        return domain.add_version(t, now, channels, schema)

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
    body: TemplateChannelContentUpdate,
    now: int,
) -> domain.Template:
    kind = domain.channel_type_of(channel_type)
    if body.channel_id is not None:
        domain.check_slug(body.channel_id, "channelId")
    problems = domain.content_problems(kind, body.content)
    if problems:
        raise domain.invalid("The channel content is not valid.", details=problems)
    update = domain.TemplateChannel(kind, body.channel_id, body.content)

    def change(t: domain.Template) -> domain.Template:
        channels = domain.with_channel_content(t.newest.channels, update)
        if not _content_changes(t.newest, channels, None):
            return t
        return domain.edit_content(t, now, channels=channels)

    template = await _change(templates, app_id, template_id, change)
    log.info("template.channel_updated", app_id=app_id, template_id=template_id, channel_type=kind)
    return template
