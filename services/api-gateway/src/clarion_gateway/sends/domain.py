"""Direct sends: receivers, realtime or batch, chunks, which channels a send uses.

Pure rules, no I/O. Violations raise domain errors; how the client sees them (the
status of each dispatcher result code, say) is ``errors``'.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import JsonValue
from pydantic_core import to_json

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
    # A batch command record stays under this many bytes (serialized), well under the
    # broker's default 1 MB ``message.max.bytes``; one receiver alone may not, see
    # ``chunk_receivers``.
    chunk_max_bytes: int = 512 * 1024
    # One variable value, and all of one receiver's variables, serialized as JSON.
    variable_max_bytes: int = 8 * 1024
    receiver_variables_max_bytes: int = 32 * 1024


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


def json_size(value: object) -> int:
    """Bytes of ``value`` as compact JSON, as the records and documents hold it."""
    return len(to_json(value))


_MAX_REPORTED = 100


def variable_problems(
    values: dict[str, JsonValue], where: str, limits: SendLimits
) -> list[dict[str, str]]:
    """The values of ``values`` over ``variable_max_bytes``, and the whole mapping over
    ``receiver_variables_max_bytes``, named by field (``where`` is the mapping's path)."""
    problems = [
        {
            "field": f"{where}.{key}",
            "message": f"value of {size} bytes is over the limit of "
            f"{limits.variable_max_bytes} bytes",
        }
        for key, value in values.items()
        if (size := json_size(value)) > limits.variable_max_bytes
    ]
    total = json_size(values)
    if total > limits.receiver_variables_max_bytes:
        problems.append(
            {
                "field": where,
                "message": f"variables of {total} bytes are over the limit of "
                f"{limits.receiver_variables_max_bytes} bytes",
            }
        )
    return problems


def check_variables(variables: Variables, limits: SendLimits) -> None:
    """Every receiver's variables within the limits (``Invalid`` naming each field)."""
    problems = [
        problem
        for uid, values in variables.items()
        for problem in variable_problems(values, f"variables.{uid}", limits)
    ]
    if problems:
        first = problems[0]
        raise Invalid(
            "Some variables are too large.",
            dev_message=f"{first['message']} ({first['field']})",
            details=problems[:_MAX_REPORTED],
        )


def chunk_receivers(
    receivers: Sequence[str], variables: Variables, max_count: int, max_bytes: int
) -> list[tuple[str, ...]]:
    """Receivers cut into chunks of at most ``max_count`` whose receivers and variables
    take at most ``max_bytes`` once serialized (a receiver whose own share is larger
    than ``max_bytes`` travels alone: one receiver is never split)."""
    if max_count < 1:
        raise ValueError("chunk size must be positive")
    chunks: list[tuple[str, ...]] = []
    current: list[str] = []
    used = 0
    for uid in receivers:
        # The uid in ``receivers`` and, with its variables, as a key of ``variables``;
        # a comma or colon each.
        cost = json_size(uid) + 1
        if uid in variables:
            cost += json_size(uid) + json_size(variables[uid]) + 2
        if current and (len(current) == max_count or used + cost > max_bytes):
            chunks.append(tuple(current))
            current, used = [], 0
        current.append(uid)
        used += cost
    if current:
        chunks.append(tuple(current))
    return chunks


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
