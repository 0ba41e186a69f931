"""How a template's versions change: edits, new versions, approval and archiving.

A draft newest version is edited in place; an approved one is left alone (sends and
campaigns use it) and a change becomes the next version, a draft. Pure rules, no I/O.
"""

from __future__ import annotations

from dataclasses import replace

from clarion_shared.errors import Conflict

from .domain import (
    Template,
    TemplateChannel,
    TemplateNotApproved,
    TemplateStatus,
    TemplateVersion,
    VariableDef,
    VersionStatus,
    check_tokens,
)


def new_version(
    number: int,
    channels: tuple[TemplateChannel, ...],
    schema: tuple[VariableDef, ...],
    now: int,
    status: VersionStatus = "draft",
) -> TemplateVersion:
    check_tokens(channels, schema)
    return TemplateVersion(
        version=number,
        status=status,
        channels=channels,
        variable_schema=schema,
        created_at=now,
        approved_at=now if status == "approved" else None,
    )


def with_channel_content(
    channels: tuple[TemplateChannel, ...], update: TemplateChannel
) -> tuple[TemplateChannel, ...]:
    """The channels with one channel's content (and channel id) replaced or added."""
    out: list[TemplateChannel] = []
    replaced = False
    for channel in channels:
        if channel.channel_type == update.channel_type:
            out.append(
                TemplateChannel(
                    update.channel_type,
                    update.channel_id if update.channel_id is not None else channel.channel_id,
                    update.content,
                )
            )
            replaced = True
        else:
            out.append(channel)
    if not replaced:
        out.append(update)
    return tuple(out)


def changes_content(
    newest: TemplateVersion,
    channels: tuple[TemplateChannel, ...] | None,
    schema: tuple[VariableDef, ...] | None,
) -> bool:
    """Whether an edit changes the newest version (sending the same content back to an
    approved template must not create a version)."""
    return (channels is not None and channels != newest.channels) or (
        schema is not None and schema != newest.variable_schema
    )


def edit_content(
    template: Template,
    now: int,
    channels: tuple[TemplateChannel, ...] | None = None,
    schema: tuple[VariableDef, ...] | None = None,
) -> Template:
    """Change channels and/or the variable schema.

    A draft newest version is edited in place; an approved one is left alone (sends and
    campaigns use it) and the change becomes the next version, a draft.
    """
    newest = template.newest
    version = new_version(
        newest.version if newest.status == "draft" else newest.version + 1,
        channels if channels is not None else newest.channels,
        schema if schema is not None else newest.variable_schema,
        now if newest.status != "draft" else newest.created_at,
    )
    versions = (
        (*template.versions[:-1], version)
        if newest.status == "draft"
        else (*template.versions, version)
    )
    return replace(template, versions=versions, updated_at=now)


def add_version(
    template: Template,
    now: int,
    channels: tuple[TemplateChannel, ...] | None = None,
    schema: tuple[VariableDef, ...] | None = None,
) -> Template:
    """The next version by hand: a draft copy of the newest, with any given changes."""
    newest = template.newest
    version = new_version(
        newest.version + 1,
        channels if channels is not None else newest.channels,
        schema if schema is not None else newest.variable_schema,
        now,
    )
    return replace(template, versions=(*template.versions, version), updated_at=now)


def set_status(template: Template, status: TemplateStatus, now: int) -> Template:
    """``approved`` approves the newest version (and restores an archived template);
    ``archived`` archives; ``draft`` restores an archived template. An approved
    version never returns to draft: edit the template to get a new draft version."""
    if status == "archived":
        return replace(template, archived=True, updated_at=now)
    if status == "approved":
        newest = template.newest
        if newest.status != "approved":
            newest = replace(newest, status="approved", approved_at=now)
        return replace(
            template,
            archived=False,
            versions=(*template.versions[:-1], newest),
            updated_at=now,
        )
    if template.newest.status == "approved" and not template.archived:
        raise Conflict(
            "An approved version cannot return to draft; edit the template to create "
            "a new draft version."
        )
    return replace(template, archived=False, updated_at=now)


def version_to_send(template: Template) -> TemplateVersion:
    """The version direct sends use: the newest approved one, unless archived."""
    version = template.approved
    if template.archived or version is None:
        raise TemplateNotApproved(template)
    return version
