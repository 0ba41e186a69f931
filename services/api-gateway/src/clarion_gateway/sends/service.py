"""Direct sends: validate, then publish the command to the dispatcher.

Realtime (1-10 receivers): one command with a reply address; the request waits (bounded)
for the dispatcher's result. Batch (11-10,000): the batch is registered with the
dispatcher (so that it can be read, ``queued``, as soon as the request answers), then
the receivers travel in chunks keyed by batch and chunk, and the request answers at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from clarion_shared.contracts.replies import SendResult
from clarion_shared.contracts.sends import (
    ChannelType,
    ReplyTo,
    SendNotification,
    TemplateChannel,
    TemplateSnapshot,
    VariableSpec,
)
from clarion_shared.errors import TimedOut, Unavailable
from clarion_shared.ids import derive_id, new_id
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger
from clarion_shared.public.batches import BatchRegistration

from ..channels.domain import Channel
from ..kafka import PublishFailed
from ..templates.domain import Template, TemplateVersion
from ..templates.versions import version_to_send
from .domain import (
    BatchAccepted,
    ChannelUnusable,
    RealtimeOutcome,
    SendLimits,
    SendRejected,
    SendRequest,
    UnknownTemplate,
    Variables,
    channel_problem,
    check_variables,
    chunk_receivers,
    normalize_receivers,
    pick_channel,
    send_mode,
    used_channels,
    variables_for,
)

log = get_logger(__name__)


class SendCommands(Protocol):
    """The send commands the gateway publishes; both raise ``PublishFailed``."""

    async def send(self, command: SendNotification) -> None: ...

    async def send_chunks(self, commands: Sequence[SendNotification]) -> None: ...


class TemplateSource(Protocol):
    """Where sends read templates (``authoring.service.CachedTemplates``)."""

    async def get(self, app_id: str, template_id: str) -> Template | None: ...


class ChannelSource(Protocol):
    """Where sends read channels (``authoring.service.CachedChannels``)."""

    async def get(self, app_id: str, channel_id: str) -> Channel | None: ...

    async def of_type(self, app_id: str, channel_type: ChannelType) -> list[Channel]: ...


class RegistrationFailed(Exception):
    """The dispatcher did not take a batch's registration (unreachable, or refused it)."""


class BatchRegistry(Resource, Protocol):
    async def register(self, app_id: str, batch_id: str, batch: BatchRegistration) -> None:
        """Register the batch with the dispatcher, which owns it; a repeat (same id, a
        retried send) is a no-op there. Raises ``RegistrationFailed``."""
        ...


class Requester(Resource, Protocol):
    """Request/reply over Kafka (``clarion_shared.rpc.KafkaRequester``)."""

    @property
    def ready(self) -> bool: ...

    async def request(self, send: Callable[[str], Awaitable[None]], timeout_s: float) -> SendResult:
        """Call ``send(request_id)`` and wait for the reply; ``TimeoutError`` when it is
        late. What ``send`` raises (``PublishFailed``) comes through."""
        ...


@dataclass(frozen=True)
class Realtime:
    """How realtime sends wait for their result."""

    requester: Requester
    reply_topic: str
    timeout_s: float


BatchMode = Literal["batch", "campaign"]


@dataclass(frozen=True)
class PreparedSend:
    """A validated send, ready to publish."""

    app_id: str
    receivers: tuple[str, ...]
    variables: Variables
    snapshot: TemplateSnapshot
    tag: str | None

    @property
    def channel_types(self) -> list[str]:
        return [c.channel_type for c in self.snapshot.channels]


def _unavailable() -> Unavailable:
    return Unavailable(
        "The service is temporarily unavailable; try again.",
        dev_message="The message broker did not accept the send command.",
    )


async def send_message(
    request: SendRequest,
    *,
    templates: TemplateSource,
    channels: ChannelSource,
    commands: SendCommands,
    registry: BatchRegistry,
    realtime: Realtime,
    limits: SendLimits,
    now: int,
    idempotency_key: str | None = None,
) -> RealtimeOutcome | BatchAccepted:
    """Validate, then publish the send (realtime: and wait for its result).

    With an ``Idempotency-Key`` the send's id is derived from it: a client retrying
    after a failure that left some chunks published sends the same ids again, and the
    dispatcher's derived record ids make the repeat a no-op.
    """
    receivers = normalize_receivers(request.receivers, limits)
    variables = variables_for(receivers, request.variables)
    check_variables(variables, limits)
    send = PreparedSend(
        app_id=request.app_id,
        receivers=receivers,
        variables=variables,
        snapshot=await _snapshot(templates, channels, request),
        tag=request.tag,
    )
    if send_mode(len(receivers), limits) == "realtime":
        notification_id = _send_id("ntf_", request.app_id, idempotency_key)
        return await _realtime(send, notification_id, commands, realtime, now)
    batch_id = _send_id("bat_", request.app_id, idempotency_key)
    return await publish_batch(send, batch_id, commands, registry, limits, now)


def _send_id(prefix: str, app_id: str, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return new_id(prefix)
    return prefix + derive_id(app_id, "send", idempotency_key)


# Bytes a command's chunk numbers may add to the empty command it is measured on.
_CHUNK_NUMBERS_SLACK = 32


def _batch_chunks(
    send: PreparedSend, batch_id: str, limits: SendLimits, now: int, mode: BatchMode = "batch"
) -> list[SendNotification]:
    """The batch's command records: at most ``chunk_size`` receivers each, and at most
    ``chunk_max_bytes`` serialized (the template travels in every record)."""

    def command(part: Sequence[str], index: int, count: int) -> SendNotification:
        return SendNotification(
            app_id=send.app_id,
            send_id=batch_id,
            mode=mode,
            template=send.snapshot,
            receivers=list(part),
            variables={uid: send.variables[uid] for uid in part if uid in send.variables},
            tag=send.tag,
            chunk=index,
            chunks=count,
            total=len(send.receivers),
            created_at=now,
        )

    empty = len(command((), 0, 1).to_bytes()) + _CHUNK_NUMBERS_SLACK
    parts = chunk_receivers(
        send.receivers, send.variables, limits.chunk_size, limits.chunk_max_bytes - empty
    )
    return [command(part, index, len(parts)) for index, part in enumerate(parts)]


async def publish_batch(
    send: PreparedSend,
    batch_id: str,
    commands: SendCommands,
    registry: BatchRegistry,
    limits: SendLimits,
    now: int,
    mode: BatchMode = "batch",
) -> BatchAccepted:
    """Register the batch (or the campaign: ``mode``), then publish its chunks: nothing
    is published for a batch the dispatcher does not know (503, nothing half-done).
    Repeatable: the registration of a known id is a no-op, and the chunks' records have
    derived ids, so a repeat after a failure publishes nothing twice in effect."""
    chunks = _batch_chunks(send, batch_id, limits, now, mode)
    registration = BatchRegistration(
        mode=mode,
        total=len(send.receivers),
        created_at=now,
        channels=[channel.channel_type for channel in send.snapshot.channels],
        chunks=[chunk.receivers for chunk in chunks],
    )
    try:
        await registry.register(send.app_id, batch_id, registration)
    except RegistrationFailed as exc:
        log.error(
            "send.batch_registration_failed",
            app_id=send.app_id,
            batch_id=batch_id,
            error=str(exc),
        )
        raise Unavailable(
            "The service is temporarily unavailable; try again.",
            dev_message="The dispatcher did not take the batch; nothing was sent.",
        ) from exc
    try:
        await commands.send_chunks(chunks)
    except PublishFailed as exc:
        log.error(
            "send.batch_publish_failed", app_id=send.app_id, batch_id=batch_id, error=str(exc)
        )
        raise _unavailable() from exc
    log.info(
        "send.batch_accepted",
        app_id=send.app_id,
        batch_id=batch_id,
        total=len(send.receivers),
        chunks=len(chunks),
        template_id=send.snapshot.template_id,
    )
    return BatchAccepted(batch_id=batch_id, total=len(send.receivers), channels=send.channel_types)


async def _realtime(
    send: PreparedSend, notification_id: str, commands: SendCommands, realtime: Realtime, now: int
) -> RealtimeOutcome:
    if not realtime.requester.ready:
        raise _unavailable()

    async def publish(request_id: str) -> None:
        await commands.send(
            SendNotification(
                app_id=send.app_id,
                send_id=notification_id,
                mode="realtime",
                template=send.snapshot,
                receivers=list(send.receivers),
                variables=send.variables,
                tag=send.tag,
                total=len(send.receivers),
                reply_to=ReplyTo(topic=realtime.reply_topic, request_id=request_id),
                created_at=now,
            )
        )

    app_id = send.app_id
    try:
        result = await realtime.requester.request(publish, timeout_s=realtime.timeout_s)
    except PublishFailed as exc:
        log.error(
            "send.publish_failed", app_id=app_id, notification_id=notification_id, error=str(exc)
        )
        raise _unavailable() from exc
    except TimeoutError as exc:
        log.warning("send.realtime_timeout", app_id=app_id, notification_id=notification_id)
        raise TimedOut(
            "The send did not complete in time; it may still complete.",
            dev_message=f"No result within {realtime.timeout_s}s; look the "
            "notification up by its id.",
            details={"notificationId": notification_id},
        ) from exc
    if result.error is not None:
        raise SendRejected(
            result.error.code,
            result.error.message,
            details={"notificationId": notification_id, "code": result.error.code},
        )
    log.info(
        "send.realtime_done",
        app_id=app_id,
        notification_id=notification_id,
        receivers=len(send.receivers),
        failed=sum(1 for r in result.receivers if r.status == "failed"),
    )
    return RealtimeOutcome(notification_id, send.channel_types, result)


async def _snapshot(
    templates: TemplateSource, channels: ChannelSource, request: SendRequest
) -> TemplateSnapshot:
    """The template's approved version, each channel resolved to an enabled instance."""
    template = await templates.get(request.app_id, request.template_id)
    if template is None:
        raise UnknownTemplate(request.template_id)
    version = version_to_send(template)
    return await snapshot_of(channels, template, version, request.channels)


async def snapshot_of(
    channels: ChannelSource,
    template: Template,
    version: TemplateVersion,
    wanted: Sequence[ChannelType] | None = None,
) -> TemplateSnapshot:
    """``version`` of ``template`` as a send carries it: each of its channels (or those
    ``wanted``) resolved to an enabled instance (``ChannelUnusable`` otherwise)."""
    app_id = template.app_id
    resolved: list[TemplateChannel] = []
    problems: list[dict[str, str | None]] = []
    for template_channel in used_channels(version, wanted):
        if template_channel.channel_id is not None:
            one = await channels.get(app_id, template_channel.channel_id)
            candidates = [one] if one is not None else []
        else:
            candidates = await channels.of_type(app_id, template_channel.channel_type)
        channel = pick_channel(template_channel, candidates)
        if channel is None:
            problems.append(channel_problem(template_channel, candidates))
            continue
        resolved.append(
            TemplateChannel(
                channel_type=template_channel.channel_type,
                channel_id=channel.channel_id,
                content=template_channel.content,
            )
        )
    if problems:
        raise ChannelUnusable(problems)
    return TemplateSnapshot(
        template_id=template.template_id,
        version=version.version,
        template_category=template.template_category,
        channels=resolved,
        variable_schema=[
            VariableSpec(
                key=v.key,
                type=v.type,
                name=v.name,
                required=v.required,
                default_value=v.default_value,
            )
            for v in version.variable_schema
        ],
    )
