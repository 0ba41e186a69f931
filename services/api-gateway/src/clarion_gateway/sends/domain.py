"""Direct sends: receivers, realtime or batch, chunks, which channels a send uses.

Pure rules, no I/O. Violations raise domain errors; how the client sees them (the
status of each dispatcher result code, say) is ``errors``'.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import JsonValue

from clarion_shared.contracts.replies import SendResult
from clarion_shared.contracts.sends import ChannelType
from clarion_shared.errors import DomainError, Invalid

from ..channels.domain import Channel
from ..slugs import check_uid
from ..templates.domain import TemplateChannel, TemplateVersion

T = TypeVar("T")

SendModeName = Literal["realtime", "batch"]
Variables = dict[str, dict[str, JsonValue]]


@dataclass(frozen=True)
class SendLimits:
    realtime_max: int = 10
    batch_max: int = 10_000
    chunk_size: int = 500


@dataclass(frozen=True)
class SendRequest:
    """A direct send as the client asked for it."""

    app_id: str
    template_id: str
    receivers: Sequence[str]
    variables: Variables | None = None
    tag: str | None = None
    channels: Sequence[ChannelType] | None = None  # narrows the template's channels


@dataclass(frozen=True)
class RealtimeOutcome:
    notification_id: str
    channels: list[str]
    result: SendResult


@dataclass(frozen=True)
class BatchAccepted:
    batch_id: str
    total: int
    channels: list[str]


class UnknownTemplate(DomainError):
    def __init__(self, template_id: str) -> None:
        super().__init__("Template not found.", details={"templateId": template_id})


class ChannelUnusable(DomainError):
    """A channel of the template does not exist or is not enabled."""

    def __init__(self, problems: list[dict[str, str | None]]) -> None:
        super().__init__(
            "A channel of the template does not exist or is not enabled.",
            dev_message="; ".join(p["reason"] or "" for p in problems),
            details=problems,
        )


class TooManyReceivers(DomainError):
    def __init__(self, receivers: int, limit: int) -> None:
        super().__init__(
            f"A direct send takes at most {limit} distinct receivers; use a campaign for more.",
            details={"receivers": receivers, "limit": limit},
        )


class SendRejected(DomainError):
    """The dispatcher refused a realtime send with an error ``code`` of its own."""

    def __init__(self, code: str, message: str, details: Any) -> None:
        super().__init__(message, details=details)
        self.code = code


def normalize_receivers(raw: Sequence[str], limits: SendLimits) -> tuple[str, ...]:
    """Receivers de-duplicated in order; every bad uid reported with its index."""
    bad = [{"index": i, "uid": uid} for i, uid in enumerate(raw) if not check_uid(uid)]
    if bad:
        raise Invalid(
            "Some receivers are not valid uids.",
            details={"invalidReceivers": bad[:100], "count": len(bad)},
            dev_message="A uid is 1-100 letters, digits, '_' or '-'.",
        )
    unique = tuple(dict.fromkeys(raw))
    if not unique:
        raise Invalid(
            "At least one receiver is needed.",
            details=[{"field": "receivers", "message": "empty"}],
        )
    if len(unique) > limits.batch_max:
        raise TooManyReceivers(len(unique), limits.batch_max)
    return unique


def send_mode(receivers: int, limits: SendLimits) -> SendModeName:
    return "realtime" if receivers <= limits.realtime_max else "batch"


def chunked(items: Sequence[T], size: int) -> list[Sequence[T]]:
    if size < 1:
        raise ValueError("chunk size must be positive")
    return [items[i : i + size] for i in range(0, len(items), size)]


def variables_for(receivers: tuple[str, ...], variables: Variables | None) -> Variables:
    """Only the receivers' own variables travel (the rest is dropped, not an error)."""
    if not variables:
        return {}
    wanted = set(receivers)
    return {uid: values for uid, values in variables.items() if uid in wanted}


def used_channels(version: TemplateVersion, wanted: Sequence[str] | None) -> list[TemplateChannel]:
    """The template channels a send uses: all, or those ``wanted`` (types), in template
    order."""
    if wanted is None:
        return list(version.channels)
    available = {c.channel_type for c in version.channels}
    unknown = [w for w in wanted if w not in available]
    if unknown or not wanted:
        raise Invalid(
            "channels must name some of the template's channel types.",
            details={"unknownChannels": unknown, "templateChannels": sorted(available)},
        )
    chosen = set(wanted)
    return [c for c in version.channels if c.channel_type in chosen]


def pick_channel(
    template_channel: TemplateChannel, candidates: Sequence[Channel]
) -> Channel | None:
    """The channel instance a template channel sends through.

    The template's ``channelId`` when it names one (``candidates`` holds just that
    channel, if it exists); otherwise the app's oldest enabled channel of the type.
    """
    usable = [
        c
        for c in candidates
        if c.type == template_channel.channel_type
        and c.enabled
        and (template_channel.channel_id is None or c.channel_id == template_channel.channel_id)
    ]
    usable.sort(key=lambda c: (c.created_at, c.channel_id))
    return usable[0] if usable else None


def channel_problem(
    template_channel: TemplateChannel, candidates: Sequence[Channel]
) -> dict[str, str | None]:
    """Why no channel of ``candidates`` can carry ``template_channel``."""
    kind = template_channel.channel_type
    if template_channel.channel_id is None:
        reason = (
            f"the app's {kind} channels are all disabled"
            if candidates
            else f"the app has no {kind} channel"
        )
    elif not candidates:
        reason = f"channel {template_channel.channel_id} does not exist"
    elif candidates[0].type != kind:
        reason = f"channel {template_channel.channel_id} is a {candidates[0].type} channel"
    else:
        reason = f"channel {template_channel.channel_id} is disabled"
    return {"channelType": kind, "channelId": template_channel.channel_id, "reason": reason}
