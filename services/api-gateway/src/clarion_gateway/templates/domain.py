"""Templates and their versions: entities, content and schema rules, version changes.

Pure rules, no I/O. Violations raise ``clarion_shared.errors`` domain errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import JsonValue
from pydantic_core import to_json

from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.sends import ChannelType
from clarion_shared.errors import Conflict, DomainError, Invalid, NotFound
from clarion_shared.templating import KEY_RE, tokens_in

from ..slugs import check_slug
from .content import content_problems, default_content

VersionStatus = Literal["draft", "approved"]
TemplateStatus = Literal["draft", "approved", "archived"]
VariableType = Literal["string", "image", "action"]


@dataclass(frozen=True)
class VariableDef:
    key: str
    type: VariableType = "string"
    name: str | None = None
    required: bool = False
    default_value: str | None = None


@dataclass(frozen=True)
class TemplateChannel:
    channel_type: ChannelType
    channel_id: str | None
    content: JsonObject


@dataclass(frozen=True)
class TemplateVersion:
    version: int
    status: VersionStatus
    channels: tuple[TemplateChannel, ...]
    variable_schema: tuple[VariableDef, ...]
    created_at: int
    approved_at: int | None = None

    @property
    def channel_types(self) -> list[ChannelType]:
        return [c.channel_type for c in self.channels]


@dataclass(frozen=True)
class Template:
    """A template and its versions (oldest first; never empty).

    ``status`` is ``archived`` once archived, otherwise the newest version's status;
    ``approved_version`` is the newest approved version, the one direct sends use.
    """

    app_id: str
    template_id: str
    name: str
    versions: tuple[TemplateVersion, ...]
    created_at: int
    updated_at: int
    template_category: str | None = None
    label: str | None = None
    alternative_text: str | None = None
    tags: tuple[str, ...] = ()
    archived: bool = False
    revision: int = 0  # optimistic concurrency: bumped by every save

    @property
    def newest(self) -> TemplateVersion:
        return self.versions[-1]

    @property
    def status(self) -> TemplateStatus:
        return "archived" if self.archived else self.newest.status

    @property
    def approved(self) -> TemplateVersion | None:
        for version in reversed(self.versions):
            if version.status == "approved":
                return version
        return None

    @property
    def approved_version(self) -> int | None:
        approved = self.approved
        return approved.version if approved else None


class TemplateNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Template")


class TemplateIdTaken(Conflict):
    def __init__(self, template_id: str) -> None:
        super().__init__(
            f"A template with templateId {template_id!r} already exists.",
            details={"templateId": template_id},
        )


class TemplateBusy(Conflict):
    """Another request saved the template in between, every time we tried."""

    def __init__(self) -> None:
        super().__init__("The template is being changed by another request; try again.")


class TemplateNotApproved(DomainError):
    """A send names a template without an approved version, or an archived one."""

    def __init__(self, template: Template) -> None:
        super().__init__(
            "The template is not approved.",
            dev_message=f"Template {template.template_id} is {template.status}; approve it "
            "with PUT /v3/campaigns/templates/{id} {status: approved}.",
            details={"templateId": template.template_id, "status": template.status},
        )


@dataclass(frozen=True)
class VariableInput:
    """A variable as a client sent it, before validation (defaults of any JSON type)."""

    key: str
    type: str = "string"
    name: str | None = None
    required: bool = False
    default_value: JsonValue = None


@dataclass(frozen=True)
class ChannelInput:
    channel_type: ChannelType
    channel_id: str | None = None
    content: JsonObject | None = None


def _variable(item: VariableInput, where: str) -> VariableDef | dict[str, str]:
    """The variable, or the problem with it."""
    if item.type not in ("string", "image", "action"):
        return {"field": where, "message": f"type of {item.key!r} must be string, image or action"}
    default: str | None = None
    if item.default_value is not None:
        if item.type != "string":
            return {
                "field": where,
                "message": f"only string variables take a default ({item.key!r})",
            }
        if isinstance(item.default_value, dict | list):
            return {"field": where, "message": f"default of {item.key!r} must be a string"}
        default = (
            str(item.default_value).lower()
            if isinstance(item.default_value, bool)
            else str(item.default_value)
        )
    variable_type: VariableType = (
        "image" if item.type == "image" else "action" if item.type == "action" else "string"
    )
    return VariableDef(item.key, variable_type, item.name, item.required, default)


def validate_schema(items: Sequence[VariableInput]) -> tuple[VariableDef, ...]:
    problems: list[dict[str, str]] = []
    seen: set[str] = set()
    out: list[VariableDef] = []
    for index, item in enumerate(items):
        where = f"variableSchema.{index}"
        if not KEY_RE.match(item.key):
            problems.append({"field": where, "message": f"invalid variable key {item.key!r}"})
            continue
        if item.key in seen:
            problems.append({"field": where, "message": f"duplicate variable key {item.key!r}"})
            continue
        seen.add(item.key)
        variable = _variable(item, where)
        if isinstance(variable, VariableDef):
            out.append(variable)
        else:
            problems.append(variable)
    if problems:
        raise Invalid("The variable schema is not valid.", details=problems)
    return tuple(out)


def validate_channels(
    items: Sequence[ChannelInput], name: str, alternative_text: str | None
) -> tuple[TemplateChannel, ...]:
    if not items:
        raise Invalid(
            "A template needs at least one channel.",
            details=[{"field": "channels", "message": "at least one channel"}],
        )
    seen: set[str] = set()
    duplicates: list[str] = []
    problems: list[dict[str, str]] = []
    out: list[TemplateChannel] = []
    for item in items:
        if item.channel_type in seen:
            duplicates.append(item.channel_type)
            continue
        seen.add(item.channel_type)
        if item.channel_id is not None:
            check_slug(item.channel_id, "channelId")
        content = (
            item.content
            if item.content is not None
            else default_content(item.channel_type, name, alternative_text)
        )
        problems.extend(content_problems(item.channel_type, content))
        out.append(TemplateChannel(item.channel_type, item.channel_id, content))
    if duplicates:
        raise Conflict(
            f"Duplicate channel type: {', '.join(sorted(set(duplicates)))}.",
            details={"channelTypes": sorted(set(duplicates))},
        )
    if problems:
        raise Invalid("The channel content is not valid.", details=problems)
    return tuple(out)


def check_tokens(channels: Iterable[TemplateChannel], schema: Iterable[VariableDef]) -> None:
    """Every ``{{key}}`` in the content must be a variable of the schema."""
    known = {v.key for v in schema}
    unknown: set[str] = set()
    for channel in channels:
        unknown |= tokens_in(channel.content) - known
    if unknown:
        keys = sorted(unknown)
        raise Invalid(
            f"Unknown variables in the content: {', '.join(keys)}.",
            details={"unknownVariables": keys},
            dev_message=f"Add {', '.join(keys)} to variableSchema or remove the tokens.",
        )


@dataclass(frozen=True)
class TemplateLimits:
    """Sizes of a template's content, serialized as compact JSON: each channel's
    ``content``, and the whole version (every channel's content and the variable
    schema), which travels in every send command record."""

    channel_content_max_bytes: int = 64 * 1024
    template_max_bytes: int = 128 * 1024


def template_size(channels: Iterable[TemplateChannel], schema: Iterable[VariableDef]) -> int:
    return len(to_json([c.content for c in channels])) + len(
        to_json([[v.key, v.type, v.name, v.required, v.default_value] for v in schema])
    )


def check_size(
    channels: Sequence[TemplateChannel],
    schema: Sequence[VariableDef],
    limits: TemplateLimits,
    fields: Sequence[str] | None = None,
    whole: str = "channels",
) -> None:
    """``Invalid`` naming each channel content over ``channel_content_max_bytes``
    (``fields[index]``, default ``channels.<index>.content``), and ``whole`` when the
    template is over ``template_max_bytes``."""
    names = fields or [f"channels.{index}.content" for index in range(len(channels))]
    problems: list[dict[str, str]] = []
    for name, channel in zip(names, channels, strict=True):
        size = len(to_json(channel.content))
        if size > limits.channel_content_max_bytes:
            problems.append(
                {
                    "field": name,
                    "channelType": channel.channel_type,
                    "message": f"content of {size} bytes is over the limit of "
                    f"{limits.channel_content_max_bytes} bytes",
                }
            )
    total = template_size(channels, schema)
    if total > limits.template_max_bytes:
        problems.append(
            {
                "field": whole,
                "message": f"the template's content and variable schema take {total} bytes, "
                f"over the limit of {limits.template_max_bytes} bytes",
            }
        )
    if problems:
        first = problems[0]
        raise Invalid(
            "The template is too large.",
            dev_message=f"{first['message']} ({first['field']})",
            details=problems,
        )


@dataclass(frozen=True)
class TemplateDraft:
    """A new template as a client asks for it; ``template_id`` is generated when None."""

    name: str
    channels: Sequence[ChannelInput]
    variable_schema: Sequence[VariableInput] = ()
    template_id: str | None = None
    template_category: str | None = None
    label: str | None = None
    alternative_text: str | None = None
    tags: Sequence[str] = ()
    status: TemplateStatus | None = None  # of version 1; draft when None


@dataclass(frozen=True)
class TemplateChanges:
    """What an update changes (None: kept)."""

    name: str | None = None
    template_category: str | None = None
    label: str | None = None
    alternative_text: str | None = None
    tags: Sequence[str] | None = None
    status: TemplateStatus | None = None
    channels: Sequence[ChannelInput] | None = None
    variable_schema: Sequence[VariableInput] | None = None
