"""HTTP models of the template routes.

Request models ignore fields they do not know: CometChat clients send extras
(``dataType``, ``messageRetentionHours``, ``config``, ...).
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, JsonValue

from clarion_shared.api import ApiModel
from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.sends import ChannelType

from .domain import (
    ChannelInput,
    Template,
    TemplateChanges,
    TemplateDraft,
    TemplateVersion,
    VariableDef,
    VariableInput,
)
from .domain import TemplateChannel as DomainTemplateChannel


class VariableSpecIn(ApiModel):
    key: str
    type: str = Field(default="string", description="string, image or action")
    name: str | None = None
    required: bool = False
    default_value: JsonValue = Field(default=None, description="Only for string variables.")

    def to_input(self) -> VariableInput:
        return VariableInput(self.key, self.type, self.name, self.required, self.default_value)


def schema_inputs(items: list[VariableSpecIn | str] | None) -> list[VariableInput] | None:
    """CometChat declares ``variableSchema`` as strings: a string is a string variable."""
    if items is None:
        return None
    return [VariableInput(key=item) if isinstance(item, str) else item.to_input() for item in items]


class TemplateChannelIn(ApiModel):
    channel_type: ChannelType
    channel_id: str | None = Field(
        default=None,
        description="The channel instance; when absent, the app's oldest enabled channel "
        "of the type at send time.",
    )
    content: JsonObject | None = Field(
        default=None,
        description="Strings may hold {{variable}} tokens; defaults when absent. By "
        "channelType: in_app and push {title, body}; email {subject, text and/or html}; sms "
        "{text}; whatsapp {text, previewUrl?} or {template: {name, language, parameters?, "
        "components?}} (an approved template; parameters fill {{1}}, {{2}}...); custom "
        "anything.",
    )

    def to_input(self) -> ChannelInput:
        return ChannelInput(self.channel_type, self.channel_id, self.content)


def channel_inputs(items: list[TemplateChannelIn] | None) -> list[ChannelInput] | None:
    return [item.to_input() for item in items] if items is not None else None


class TemplateCreate(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Welcome",
                    "channels": [
                        {
                            "channelType": "in_app",
                            "content": {"title": "Hi {{name}}", "body": "Welcome aboard"},
                        }
                    ],
                    "variableSchema": [{"key": "name", "type": "string", "required": True}],
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=200)
    template_id: str | None = Field(
        default=None, description="Slug; generated from the name when absent."
    )
    template_category: str | None = Field(
        default=None,
        description="A category name (GET /v3/campaigns/templates/categories); an unknown "
        "one creates that category.",
    )
    label: str | None = None
    alternative_text: str | None = None
    tags: list[str] = Field(default_factory=list)
    status: Literal["draft", "approved", "archived"] | None = Field(
        default=None, description="Status of version 1 (default draft)."
    )
    channels: list[TemplateChannelIn]
    variable_schema: list[VariableSpecIn | str] = Field(default_factory=list)

    def to_draft(self) -> TemplateDraft:
        return TemplateDraft(
            name=self.name,
            channels=[c.to_input() for c in self.channels],
            variable_schema=schema_inputs(self.variable_schema) or [],
            template_id=self.template_id,
            template_category=self.template_category,
            label=self.label,
            alternative_text=self.alternative_text,
            tags=self.tags,
            status=self.status,
        )


class TemplateUpdate(ApiModel):
    """Fields update in place. ``channels`` / ``variableSchema`` edit the newest version
    when it is a draft, else create the next version (a draft). ``status: approved``
    approves the newest version; ``archived`` archives; ``draft`` restores."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "approved"}]})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    template_category: str | None = Field(
        default=None,
        description="A category name (GET /v3/campaigns/templates/categories); an unknown "
        "one creates that category.",
    )
    label: str | None = None
    alternative_text: str | None = None
    tags: list[str] | None = None
    status: Literal["draft", "approved", "archived"] | None = None
    channels: list[TemplateChannelIn] | None = None
    variable_schema: list[VariableSpecIn | str] | None = None

    def to_changes(self) -> TemplateChanges:
        return TemplateChanges(
            name=self.name,
            template_category=self.template_category,
            label=self.label,
            alternative_text=self.alternative_text,
            tags=self.tags,
            status=self.status,
            channels=channel_inputs(self.channels),
            variable_schema=schema_inputs(self.variable_schema),
        )


class TemplateVersionCreate(ApiModel):
    """Optional changes for the new version; without them it copies the newest."""

    channels: list[TemplateChannelIn] | None = None
    variable_schema: list[VariableSpecIn | str] | None = None


class TemplateChannelContentUpdate(ApiModel):
    content: JsonObject
    channel_id: str | None = None


class VariablePublic(ApiModel):
    key: str
    type: str
    name: str | None
    required: bool
    default_value: str | None

    @classmethod
    def of(cls, v: VariableDef) -> VariablePublic:
        return cls(
            key=v.key, type=v.type, name=v.name, required=v.required, default_value=v.default_value
        )


class TemplateChannelPublic(ApiModel):
    channel_type: ChannelType
    channel_id: str | None
    content: JsonObject

    @classmethod
    def of(cls, c: DomainTemplateChannel) -> TemplateChannelPublic:
        return cls(channel_type=c.channel_type, channel_id=c.channel_id, content=c.content)


class TemplateVersionPublic(ApiModel):
    version: int
    status: str
    channels: list[TemplateChannelPublic]
    variable_schema: list[VariablePublic]
    created_at: int
    approved_at: int | None

    @classmethod
    def of(cls, v: TemplateVersion) -> TemplateVersionPublic:
        return cls(
            version=v.version,
            status=v.status,
            channels=[TemplateChannelPublic.of(c) for c in v.channels],
            variable_schema=[VariablePublic.of(x) for x in v.variable_schema],
            created_at=v.created_at,
            approved_at=v.approved_at,
        )


class TemplateSummary(ApiModel):
    """A template as lists show it: the newest version's content, no history."""

    id: str
    template_id: str
    name: str
    template_category: str | None
    label: str | None
    alternative_text: str | None
    tags: list[str]
    status: str = Field(description="archived, or the newest version's status (draft | approved).")
    version: int = Field(description="The newest version number.")
    approved_version: int | None = Field(
        description="The newest approved version: the one direct sends use."
    )
    channels: list[TemplateChannelPublic]
    variable_schema: list[VariablePublic]
    created_at: int
    updated_at: int

    @classmethod
    def fields_of(cls, t: Template) -> dict[str, object]:
        newest = t.newest
        return {
            "id": t.template_id,
            "template_id": t.template_id,
            "name": t.name,
            "template_category": t.template_category,
            "label": t.label,
            "alternative_text": t.alternative_text,
            "tags": list(t.tags),
            "status": t.status,
            "version": newest.version,
            "approved_version": t.approved_version,
            "channels": [TemplateChannelPublic.of(c) for c in newest.channels],
            "variable_schema": [VariablePublic.of(v) for v in newest.variable_schema],
            "created_at": t.created_at,
            "updated_at": t.updated_at,
        }

    @classmethod
    def of(cls, t: Template) -> TemplateSummary:
        return cls.model_validate(cls.fields_of(t))


class TemplatePublic(TemplateSummary):
    versions: list[TemplateVersionPublic]

    @classmethod
    def of(cls, t: Template) -> TemplatePublic:
        fields = cls.fields_of(t)
        fields["versions"] = [TemplateVersionPublic.of(v) for v in t.versions]
        return cls.model_validate(fields)
