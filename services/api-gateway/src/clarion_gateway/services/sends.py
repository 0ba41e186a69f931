"""Direct sends: validate, then publish the command to the dispatcher.

Realtime (1-10 receivers): one command with a reply address; the request waits (bounded)
for the dispatcher's result. Batch (11-10,000): the receivers travel in chunks keyed by
the batch id, and the request answers at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.errors import KafkaError
from pydantic import JsonValue

from clarion_shared import topics
from clarion_shared.contracts.replies import SendResult
from clarion_shared.contracts.sends import (
    ReplyTo,
    SendNotification,
    TemplateChannel,
    TemplateSnapshot,
    VariableSpec,
)
from clarion_shared.errors import ApiError
from clarion_shared.ids import derive_id, new_id
from clarion_shared.logging import get_logger

from .. import domain
from ..models import BatchAccepted, MessageSend, RealtimeSent
from ..ports import ChannelRepository, Commands, Requester, TemplateRepository

log = get_logger(__name__)

# Error codes a dispatcher may answer a realtime send with, and their HTTP statuses.
_RESULT_STATUS = {
    "ERR_VALIDATION": 400,
    "ERR_BAD_REQUEST": 400,
    "ERR_TEMPLATE_NOT_FOUND": 400,
    "ERR_TEMPLATE_NOT_APPROVED": 400,
    "ERR_CHANNEL_NOT_FOUND": 400,
    "ERR_INVALID_VARIABLES": 400,
    "ERR_TARGET_LIMIT_EXCEEDED": 400,
    "ERR_USER_NOT_FOUND": 400,
    "ERR_NOT_FOUND": 404,
    "ERR_CONFLICT": 409,
    "ERR_TOO_MANY_REQUESTS": 429,
    "ERR_UNAVAILABLE": 503,
    "ERR_TIMEOUT": 504,
}


class PublishFailed(Exception):
    """The broker did not take the command (told apart from the reply timeout)."""


@dataclass(frozen=True)
class SendSettings:
    limits: domain.SendLimits
    realtime_timeout_s: float


async def send_message(
    *,
    app_id: str,
    body: MessageSend,
    templates: TemplateRepository,
    channels: ChannelRepository,
    commands: Commands,
    requester: Requester,
    settings: SendSettings,
    now: int,
    idempotency_key: str | None = None,
) -> RealtimeSent | BatchAccepted:
    """Validate, then publish the send (realtime: and wait for its result).

    With an ``Idempotency-Key`` the send's id is derived from it: a client retrying
    after a failure that left some chunks published sends the same ids again, and the
    dispatcher's derived record ids make the repeat a no-op.
    """
    receivers = domain.normalize_receivers(body.receivers, settings.limits)
    snapshot = await _snapshot(templates, channels, app_id, body)
    channel_types = [c.channel_type for c in snapshot.channels]
    variables = _variables_for(receivers, body.variables)
    if domain.send_mode(len(receivers), settings.limits) == "realtime":
        notification_id = _send_id("ntf_", app_id, idempotency_key)
        return await _realtime(
            app_id,
            notification_id,
            body,
            receivers,
            variables,
            snapshot,
            commands,
            requester,
            settings,
            now,
        )
    batch_id = _send_id("bat_", app_id, idempotency_key)
    parts = domain.chunked(receivers, settings.limits.chunk_size)
    commands_out = [
        SendNotification(
            app_id=app_id,
            send_id=batch_id,
            mode="batch",
            template=snapshot,
            receivers=list(part),
            variables={uid: variables[uid] for uid in part if uid in variables},
            tag=body.tag,
            chunk=index,
            chunks=len(parts),
            total=len(receivers),
            created_at=now,
        )
        for index, part in enumerate(parts)
    ]
    try:
        await commands.send_chunks(commands_out)
    except (KafkaError, TimeoutError) as exc:
        log.error("send.batch_publish_failed", app_id=app_id, batch_id=batch_id, error=repr(exc))
        raise _unavailable() from exc
    log.info(
        "send.batch_accepted",
        app_id=app_id,
        batch_id=batch_id,
        total=len(receivers),
        chunks=len(parts),
        template_id=snapshot.template_id,
    )
    return BatchAccepted(batch_id=batch_id, total=len(receivers), channels=list(channel_types))


def _send_id(prefix: str, app_id: str, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return new_id(prefix)
    return prefix + derive_id(app_id, "send", idempotency_key)


async def _realtime(
    app_id: str,
    notification_id: str,
    body: MessageSend,
    receivers: tuple[str, ...],
    variables: dict[str, dict[str, JsonValue]],
    snapshot: TemplateSnapshot,
    commands: Commands,
    requester: Requester,
    settings: SendSettings,
    now: int,
) -> RealtimeSent:
    if not requester.ready:
        raise _unavailable()

    async def send(request_id: str) -> None:
        command = SendNotification(
            app_id=app_id,
            send_id=notification_id,
            mode="realtime",
            template=snapshot,
            receivers=list(receivers),
            variables=variables,
            tag=body.tag,
            total=len(receivers),
            reply_to=ReplyTo(topic=topics.REPLIES, request_id=request_id),
            created_at=now,
        )
        try:
            await commands.send(command)
        except (KafkaError, TimeoutError) as exc:
            raise PublishFailed(repr(exc)) from exc

    try:
        result = await requester.request(send, timeout_s=settings.realtime_timeout_s)
    except PublishFailed as exc:
        log.error(
            "send.publish_failed", app_id=app_id, notification_id=notification_id, error=str(exc)
        )
        raise _unavailable() from exc
    except TimeoutError as exc:
        log.warning("send.realtime_timeout", app_id=app_id, notification_id=notification_id)
        raise ApiError(
            504,
            "ERR_TIMEOUT",
            "The send did not complete in time; it may still complete.",
            dev_message=f"No result within {settings.realtime_timeout_s}s; look the "
            "notification up by its id.",
            details={"notificationId": notification_id},
        ) from exc
    if result.error is not None:
        raise _result_error(result, notification_id)
    log.info(
        "send.realtime_done",
        app_id=app_id,
        notification_id=notification_id,
        receivers=len(receivers),
        failed=sum(1 for r in result.receivers if r.status == "failed"),
    )
    return RealtimeSent.of(notification_id, [c.channel_type for c in snapshot.channels], result)


def _result_error(result: SendResult, notification_id: str) -> ApiError:
    assert result.error is not None
    status = _RESULT_STATUS.get(result.error.code, 500)
    return ApiError(
        status,
        result.error.code if status != 500 else "ERR_INTERNAL",
        result.error.message if status != 500 else "The send failed.",
        dev_message=result.error.message,
        details={"notificationId": notification_id, "code": result.error.code},
    )


def _unavailable() -> ApiError:
    return ApiError(
        503,
        "ERR_UNAVAILABLE",
        "The service is temporarily unavailable; try again.",
        dev_message="The message broker did not accept the send command.",
        headers={"Retry-After": "1"},
    )


def _variables_for(
    receivers: tuple[str, ...], variables: dict[str, dict[str, JsonValue]] | None
) -> dict[str, dict[str, JsonValue]]:
    """Only the receivers' own variables travel (the rest is dropped, not an error)."""
    if not variables:
        return {}
    wanted = set(receivers)
    return {uid: values for uid, values in variables.items() if uid in wanted}


async def _snapshot(
    templates: TemplateRepository,
    channels: ChannelRepository,
    app_id: str,
    body: MessageSend,
) -> TemplateSnapshot:
    template = await templates.get(app_id, body.template_id)
    if template is None:
        raise ApiError(
            400,
            "ERR_TEMPLATE_NOT_FOUND",
            "Template not found.",
            details={"templateId": body.template_id},
        )
    version = template.approved
    if template.archived or version is None:
        raise ApiError(
            400,
            "ERR_TEMPLATE_NOT_APPROVED",
            "The template is not approved.",
            dev_message=f"Template {template.template_id} is {template.status}; approve it "
            "with PUT /v3/campaigns/templates/{id} {status: approved}.",
            details={"templateId": template.template_id, "status": template.status},
        )
    used = domain.used_channels(version, body.channels)
    resolved: list[TemplateChannel] = []
    problems: list[dict[str, str | None]] = []
    for template_channel in used:
        if template_channel.channel_id is not None:
            one = await channels.get(app_id, template_channel.channel_id)
            candidates = [one] if one is not None else []
        else:
            candidates = await channels.of_type(app_id, template_channel.channel_type)
        channel = domain.pick_channel(template_channel, candidates)
        if channel is None:
            problems.append(_channel_problem(template_channel, candidates))
            continue
        resolved.append(
            TemplateChannel(
                channel_type=template_channel.channel_type,
                channel_id=channel.channel_id,
                content=template_channel.content,
            )
        )
    if problems:
        raise ApiError(
            400,
            "ERR_CHANNEL_NOT_FOUND",
            "A channel of the template does not exist or is not enabled.",
            dev_message="; ".join(p["reason"] or "" for p in problems),
            details=problems,
        )
    return TemplateSnapshot(
        template_id=template.template_id,
        version=version.version,
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


def _channel_problem(
    template_channel: domain.TemplateChannel, candidates: list[domain.Channel]
) -> dict[str, str | None]:
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
