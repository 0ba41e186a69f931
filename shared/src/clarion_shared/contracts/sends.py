"""Topic ``clarion.sends``: commands to send one template to many receivers.

Key: the notification id (realtime) or batch / campaign id, so the chunks of one send
stay ordered on one partition.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from .base import Contract, JsonObject

ChannelType = Literal["in_app", "push", "email", "sms", "custom", "whatsapp"]
# In the order records of one receiver are listed (whatsapp, added last, keeps the
# order of the others).
CHANNEL_TYPES: tuple[ChannelType, ...] = ("in_app", "push", "email", "sms", "custom", "whatsapp")
SendMode = Literal["realtime", "batch", "campaign"]


class VariableSpec(Contract):
    key: str
    type: Literal["string", "image", "action"] = "string"
    name: str | None = None
    required: bool = False
    default_value: str | None = None


class TemplateChannel(Contract):
    channel_type: ChannelType
    channel_id: str
    content: JsonObject


class TemplateSnapshot(Contract):
    """The approved template version as it was when the send was accepted."""

    template_id: str
    version: int
    template_category: str | None = Field(
        default=None, description="the template's category (its feed items carry it)"
    )
    channels: list[TemplateChannel]
    variable_schema: list[VariableSpec] = Field(default_factory=list)


class ReplyTo(Contract):
    """Where the realtime result goes, and the id the waiting gateway matches on."""

    topic: str
    request_id: str


class SendNotification(Contract):
    """Send ``template`` to ``receivers`` (one chunk of a send)."""

    type: Literal["send_notification"] = "send_notification"
    v: Literal[1] = 1
    app_id: str
    send_id: str = Field(description="notification id (realtime) or batch / campaign id")
    mode: SendMode
    template: TemplateSnapshot
    receivers: list[str]
    variables: dict[str, dict[str, JsonValue]] = Field(default_factory=dict)
    common_variables: dict[str, JsonValue] = Field(default_factory=dict)
    tag: str | None = None
    chunk: int = 0
    chunks: int = 1
    total: int = 0
    reply_to: ReplyTo | None = None
    created_at: int
