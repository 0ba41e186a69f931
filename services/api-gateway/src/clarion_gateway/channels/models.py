"""HTTP models of the channel routes.

Request models ignore fields they do not know: CometChat clients send extras
(``dataType``, ...), and send back what they read (``id``, ``createdAt``, ...). The
ones a client is known to send are documented on the body as accepted and ignored.
A custom channel's signing secret is shown in the create's answer and never again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ConfigDict, Field

from clarion_shared.api import ApiModel
from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.sends import ChannelType

from .domain import Channel, ChannelChanges, NewChannel, mask_metadata
from .provider_settings import SIGNING_SECRET
from .service import TypeAvailability

IGNORED_NOTE = "Accepted and ignored"
_METADATA = (
    "Provider settings (API.md, Channels), by type: email {smtp: {host, port, security: "
    "starttls|tls|none, username?, password?}, from: {email, name?}, replyTo?, "
    "listUnsubscribe?}; sms {provider: twilio, accountSid, authToken, from, baseUrl?} or "
    "{provider: http, url, headers?}; push {fcm?: {projectId, serviceAccount, baseUrl?, "
    "tokenUrl?}, apns?: {teamId, keyId, privateKey, bundleId, production?, baseUrl?}} "
    "(one at least); whatsapp {phoneNumberId, accessToken, baseUrl?, apiVersion?}; custom "
    "{url, headers?}; each also rateLimitPerSecond?. in_app has none. An enabled channel "
    "missing a required key, or any channel carrying a malformed value, is 400 "
    "ERR_VALIDATION naming each (metadata.<path>): a disabled channel may be saved "
    "incomplete and filled in later. Other keys "
    "are stored and ignored. Provider URLs must be https and not name a loopback or "
    "private address unless CLARION_WEBHOOKS_ALLOW_PRIVATE is set. Credentials are never "
    "returned in full."
)
_READ_ONLY = {
    "id": "the same as `channelId`, set by Clarion",
    "createdAt": "set by Clarion",
    "updatedAt": "set by Clarion",
    "dataType": "a CometChat field Clarion does not use",
}
IGNORED_ON_CREATE: dict[str, str] = dict(_READ_ONLY)
IGNORED_ON_UPDATE: dict[str, str] = {
    **_READ_ONLY,
    "channelId": "immutable; the path names the channel",
    "type": "immutable; a channel keeps its type (create another for another type)",
}


def _documented(
    ignored: dict[str, str], examples: list[Any] | None = None
) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` that lists the accepted-and-ignored fields, each with why."""

    def document(schema: dict[str, Any]) -> None:
        properties = schema.setdefault("properties", {})
        for name, why in ignored.items():
            properties[name] = {"description": f"{IGNORED_NOTE}: {why}."}
        if examples is not None:
            schema["examples"] = examples

    return document


class ChannelCreate(ApiModel):
    """Every field given is stored and returned (credentials in ``metadata`` masked).
    Fields marked "Accepted and ignored", and any other field not listed, are accepted
    and ignored."""

    model_config = ConfigDict(
        json_schema_extra=_documented(
            IGNORED_ON_CREATE, [{"name": "In-app", "type": "in_app", "enabled": True}]
        )
    )

    name: str = Field(min_length=1, max_length=200)
    type: str = Field(
        description="in_app, push, email, sms, whatsapp or custom.",
        examples=["in_app"],
    )
    channel_id: str | None = Field(
        default=None, description="Slug; generated from the name when absent; immutable."
    )
    enabled: bool = False
    metadata: JsonObject = Field(default_factory=dict, description=_METADATA)

    def to_new(self) -> NewChannel:
        return NewChannel(self.name, self.type, self.channel_id, self.enabled, self.metadata)


class ChannelUpdate(ApiModel):
    """Only the fields given change. ``channelId`` and ``type`` are immutable (accepted
    and ignored, so a channel read and sent back is fine). ``metadata`` replaces the stored one;
    credentials sent back masked (``****abcd``) keep their stored value, and a custom
    channel keeps its signing secret whatever is sent. The channel that results is
    checked as on create. Fields marked "Accepted and ignored", and any other field not
    listed, are accepted and ignored."""

    model_config = ConfigDict(json_schema_extra=_documented(IGNORED_ON_UPDATE))

    name: str | None = Field(default=None, min_length=1, max_length=200)
    enabled: bool | None = None
    metadata: JsonObject | None = Field(default=None, description=_METADATA)

    def to_changes(self) -> ChannelChanges:
        return ChannelChanges(self.name, self.enabled, self.metadata)


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
    def of(cls, channel: Channel) -> ChannelPublic:
        return cls(
            id=channel.channel_id,
            channel_id=channel.channel_id,
            name=channel.name,
            type=channel.type,
            enabled=channel.enabled,
            metadata=mask_metadata(channel.metadata),
            created_at=channel.created_at,
            updated_at=channel.updated_at,
        )


def _is_none(value: object) -> bool:
    return value is None


class ChannelCreated(ChannelPublic):
    signing_secret: str | None = Field(
        default=None,
        exclude_if=_is_none,
        description="Custom channels only: whsec_..., verifies the Standard Webhooks "
        "signature (webhook-signature header) of each POST to the channel's url; shown "
        "this once (masked in metadata.signingSecret on every read).",
    )

    @classmethod
    def created(cls, channel: Channel) -> ChannelCreated:
        secret = channel.metadata.get(SIGNING_SECRET) if channel.type == "custom" else None
        public = ChannelPublic.of(channel).model_dump()
        return cls.model_validate(
            {**public, "signing_secret": secret if isinstance(secret, str) else None}
        )


class ChannelAvailability(ApiModel):
    type: str
    available: bool
    limit: int | None
    count: int

    @classmethod
    def of(cls, row: TypeAvailability) -> ChannelAvailability:
        return cls(type=row.type, available=row.available, limit=row.limit, count=row.count)
