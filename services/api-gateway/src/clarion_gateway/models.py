"""HTTP models of the public API, named by role (``ChannelCreate``, ``ChannelPublic``, ...).

JSON fields are camelCase. Request models ignore fields they do not know: CometChat
clients send extras (``dataType``, ``messageRetentionHours``, ``config``, ...).
"""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.replies import SendResult
from clarion_shared.contracts.sends import ChannelType

from . import domain

T = TypeVar("T")


class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="ignore"
    )


# ---------------------------------------------------------------- envelopes


class Data(ApiModel, Generic[T]):
    data: T


class Pagination(ApiModel):
    total: int
    count: int
    per_page: int = Field(alias="per_page")
    current_page: int = Field(alias="current_page")
    total_pages: int = Field(alias="total_pages")


class PageMeta(ApiModel):
    pagination: Pagination


class Paged(ApiModel, Generic[T]):
    data: list[T]
    meta: PageMeta

    @classmethod
    def of(cls, items: list[T], total: int, page: domain.Page) -> Paged[T]:
        per_page = page.per_page
        return cls(
            data=items,
            meta=PageMeta(
                pagination=Pagination(
                    total=total,
                    count=len(items),
                    per_page=per_page,
                    current_page=page.number,
                    total_pages=max(1, -(-total // per_page)),
                )
            ),
        )


class ErrorBody(ApiModel):
    code: str = Field(examples=["ERR_VALIDATION"])
    message: str
    dev_message: str
    details: JsonValue = None
    source: str = "clarion"


class ErrorEnvelope(ApiModel):
    error: ErrorBody


ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorEnvelope, "description": "ERR_VALIDATION, ERR_BAD_REQUEST, domain codes"},
    401: {"model": ErrorEnvelope, "description": "ERR_UNAUTHORIZED: missing or wrong apikey"},
    404: {"model": ErrorEnvelope, "description": "ERR_NOT_FOUND"},
    409: {"model": ErrorEnvelope, "description": "ERR_CONFLICT"},
}


# ---------------------------------------------------------------- apps


class AppCreate(ApiModel):
    name: str = Field(min_length=1, max_length=200)
    app_id: str | None = Field(default=None, description="Generated when absent.")
    api_key: str | None = Field(
        default=None, description="Generated (ck_...) when absent; stored hashed."
    )


class AppCreated(ApiModel):
    app_id: str
    name: str
    api_key: str = Field(description="Shown this once.")


# ---------------------------------------------------------------- channels


class ChannelCreate(ApiModel):
    name: str = Field(min_length=1, max_length=200)
    type: str = Field(
        description="in_app, push, email, sms or custom (whatsapp is refused with 403).",
        examples=["in_app"],
    )
    channel_id: str | None = Field(
        default=None, description="Slug; generated from the name when absent; immutable."
    )
    enabled: bool = False
    metadata: JsonObject = Field(
        default_factory=dict,
        description="Provider settings; credentials are never returned in full.",
    )


class ChannelUpdate(ApiModel):
    """``channelId`` and ``type`` are immutable. ``metadata`` replaces the stored one;
    credentials sent back masked (``****abcd``) keep their stored value."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    enabled: bool | None = None
    metadata: JsonObject | None = None


class ChannelPublic(ApiModel):
    id: str
    channel_id: str
    name: str
    type: ChannelType
    enabled: bool
    metadata: JsonObject
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, channel: domain.Channel) -> ChannelPublic:
        return cls(
            id=channel.channel_id,
            channel_id=channel.channel_id,
            name=channel.name,
            type=channel.type,
            enabled=channel.enabled,
            metadata=domain.mask_metadata(channel.metadata),
            created_at=channel.created_at,
            updated_at=channel.updated_at,
        )


class ChannelAvailability(ApiModel):
    type: str
    available: bool
    limit: int | None
    count: int


# ---------------------------------------------------------------- templates


class VariableSpecIn(ApiModel):
    key: str
    type: str = Field(default="string", description="string, image or action")
    name: str | None = None
    required: bool = False
    default_value: JsonValue = Field(default=None, description="Only for string variables.")

    def to_input(self) -> domain.VariableInput:
        return domain.VariableInput(
            self.key, self.type, self.name, self.required, self.default_value
        )


def schema_inputs(items: list[VariableSpecIn | str]) -> list[domain.VariableInput]:
    """CometChat declares ``variableSchema`` as strings: a string is a string variable."""
    return [
        domain.VariableInput(key=item) if isinstance(item, str) else item.to_input()
        for item in items
    ]


class TemplateChannelIn(ApiModel):
    channel_type: ChannelType
    channel_id: str | None = Field(
        default=None,
        description="The channel instance; when absent, the app's oldest enabled channel "
        "of the type at send time.",
    )
    content: JsonObject | None = Field(
        default=None, description="Strings may hold {{variable}} tokens; defaults when absent."
    )

    def to_input(self) -> domain.ChannelInput:
        return domain.ChannelInput(self.channel_type, self.channel_id, self.content)


class TemplateCreate(ApiModel):
    name: str = Field(min_length=1, max_length=200)
    template_id: str | None = Field(
        default=None, description="Slug; generated from the name when absent."
    )
    template_category: str | None = None
    label: str | None = None
    alternative_text: str | None = None
    tags: list[str] = Field(default_factory=list)
    status: Literal["draft", "approved", "archived"] | None = Field(
        default=None, description="Status of version 1 (default draft)."
    )
    channels: list[TemplateChannelIn]
    variable_schema: list[VariableSpecIn | str] = Field(default_factory=list)


class TemplateUpdate(ApiModel):
    """Fields update in place. ``channels`` / ``variableSchema`` edit the newest version
    when it is a draft, else create the next version (a draft). ``status: approved``
    approves the newest version; ``archived`` archives; ``draft`` restores."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    template_category: str | None = None
    label: str | None = None
    alternative_text: str | None = None
    tags: list[str] | None = None
    status: Literal["draft", "approved", "archived"] | None = None
    channels: list[TemplateChannelIn] | None = None
    variable_schema: list[VariableSpecIn | str] | None = None


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
    def of(cls, v: domain.VariableDef) -> VariablePublic:
        return cls(
            key=v.key, type=v.type, name=v.name, required=v.required, default_value=v.default_value
        )


class TemplateChannelPublic(ApiModel):
    channel_type: ChannelType
    channel_id: str | None
    content: JsonObject

    @classmethod
    def of(cls, c: domain.TemplateChannel) -> TemplateChannelPublic:
        return cls(channel_type=c.channel_type, channel_id=c.channel_id, content=c.content)


class TemplateVersionPublic(ApiModel):
    version: int
    status: str
    channels: list[TemplateChannelPublic]
    variable_schema: list[VariablePublic]
    created_at: int
    approved_at: int | None

    @classmethod
    def of(cls, v: domain.TemplateVersion) -> TemplateVersionPublic:
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
    def fields_of(cls, t: domain.Template) -> dict[str, object]:
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
    def of(cls, t: domain.Template) -> TemplateSummary:
        return cls.model_validate(cls.fields_of(t))


class TemplatePublic(TemplateSummary):
    versions: list[TemplateVersionPublic]

    @classmethod
    def of(cls, t: domain.Template) -> TemplatePublic:
        fields = cls.fields_of(t)
        fields["versions"] = [TemplateVersionPublic.of(v) for v in t.versions]
        return cls.model_validate(fields)


# ---------------------------------------------------------------- direct send


class MessageSend(ApiModel):
    template_id: str = Field(min_length=1, description="Template id (slug).")
    receivers: list[str] = Field(description="uids; 1-10 realtime, 11-10,000 batch.")
    variables: dict[str, dict[str, JsonValue]] | None = Field(
        default=None, description="Per receiver: {uid: {key: value}}."
    )
    tag: str | None = Field(default=None, max_length=200)
    channels: list[ChannelType] | None = Field(
        default=None, description="Narrow to some of the template's channel types."
    )


class ReceiverStatus(ApiModel):
    uid: str
    status: Literal["sent", "failed"]
    code: str | None = None
    message: str | None = None


class RealtimeSent(ApiModel):
    mode: Literal["realtime"] = "realtime"
    notification_id: str
    channels: list[str]
    receivers: list[ReceiverStatus]

    @classmethod
    def of(cls, notification_id: str, channels: list[str], result: SendResult) -> RealtimeSent:
        return cls(
            notification_id=notification_id,
            channels=channels,
            receivers=[
                ReceiverStatus(uid=r.uid, status=r.status, code=r.code, message=r.message)
                for r in result.receivers
            ],
        )


class BatchAccepted(ApiModel):
    mode: Literal["batch"] = "batch"
    batch_id: str
    total: int
    channels: list[str]
