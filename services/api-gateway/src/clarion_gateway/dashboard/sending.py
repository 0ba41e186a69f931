"""A test send from the User detail page: the form's templates, variables and preview,
and the send itself through the direct send's use case (``sends.service.send_message``),
with the same cached templates and channels as ``POST .../notifications/messages``.

The preview renders with ``clarion_shared.templating``, as the dispatcher does
(``clarion_dispatcher.fanout.rendering``): the same values, defaults and escaping.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from pydantic import JsonValue, ValidationError

from clarion_shared.api import Data
from clarion_shared.contracts.sends import VariableSpec
from clarion_shared.errors import DomainError
from clarion_shared.ids import now
from clarion_shared.public.notifications import NotificationPublic
from clarion_shared.templating import MissingVariables, Renderer

from ..errors import ERRORS
from ..proxies.peers import Forward, Peers, PeerUnavailable
from ..sends.domain import RealtimeOutcome, SendLimits, SendRequest
from ..sends.service import (
    BatchRegistry,
    ChannelSource,
    Realtime,
    SendCommands,
    TemplateSource,
    send_message,
)
from ..templates.domain import Template, TemplateVersion
from ..templates.service import TemplateRepository
from .forms import app_templates

# Form fields of the variables: ``var.<key>`` (keys are identifiers: no clash).
VARIABLE_PREFIX = "var."


@dataclass(frozen=True)
class SendPath:
    """The send route's use case dependencies (``wiring.routers`` builds both)."""

    listing: TemplateRepository  # the templates to choose from
    templates: TemplateSource  # what the send reads (cached)
    channels: ChannelSource
    commands: SendCommands
    registry: BatchRegistry
    realtime: Realtime
    limits: SendLimits
    peers: Peers  # the notification's per-channel states, from the dispatcher


@dataclass(frozen=True)
class VariableField:
    key: str
    type: str
    required: bool
    value: str
    description: str | None
    default: str | None


@dataclass(frozen=True)
class ChannelPreview:
    channel_type: str
    fields: list[tuple[str, str]]


@dataclass
class SendForm:
    """What the send form shows."""

    choices: list[tuple[str, str]]  # (template id, name) of the sendable templates
    chosen: str = ""
    variables: list[VariableField] = field(default_factory=list)
    preview: list[ChannelPreview] = field(default_factory=list)
    preview_problem: str | None = None
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ChannelOutcome:
    channel_type: str
    channel_id: str | None
    status: str
    message: str | None


@dataclass(frozen=True)
class SendOutcome:
    notification_id: str
    status: str  # the receiver's: sent | failed
    message: str | None
    channels: list[ChannelOutcome]


def _sendable(template: Template) -> bool:
    return not template.archived and template.approved is not None


async def template_choices(path: SendPath, app_id: str) -> list[tuple[str, str]]:
    """The app's templates that can be sent (an approved version, not archived)."""
    items = await app_templates(path.listing, app_id)
    return [(t.template_id, t.name) for t in items if _sendable(t)]


def entered_values(form: Mapping[str, str]) -> dict[str, str]:
    return {
        key[len(VARIABLE_PREFIX) :]: value
        for key, value in form.items()
        if key.startswith(VARIABLE_PREFIX) and isinstance(value, str)
    }


def variable_specs(version: TemplateVersion) -> tuple[VariableSpec, ...]:
    return tuple(
        VariableSpec(
            key=v.key, type=v.type, name=v.name, required=v.required, default_value=v.default_value
        )
        for v in version.variable_schema
    )


def typed_values(
    specs: tuple[VariableSpec, ...], entered: Mapping[str, str]
) -> tuple[dict[str, JsonValue], list[str]]:
    """The typed values (an empty input is no value) and what is wrong, in words."""
    values: dict[str, JsonValue] = {}
    problems: list[str] = []
    for spec in specs:
        raw = entered.get(spec.key, "").strip()
        if not raw:
            continue
        if spec.type == "string":
            values[spec.key] = raw
            continue
        try:
            parsed = json.loads(raw)
        except ValueError:
            problems.append(f"{spec.key} must be a JSON object (it is of type {spec.type}).")
            continue
        if not isinstance(parsed, dict):
            problems.append(f"{spec.key} must be a JSON object (it is of type {spec.type}).")
            continue
        values[spec.key] = parsed
    return values, problems


def as_text(value: JsonValue) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)


def render_channels(
    version: TemplateVersion, specs: tuple[VariableSpec, ...], values: dict[str, JsonValue]
) -> list[ChannelPreview]:
    renderer = Renderer(specs)
    merged = renderer.values_for(values, None)
    out: list[ChannelPreview] = []
    for channel in version.channels:
        escape_in = "html" if channel.channel_type == "email" else ""
        rendered = renderer.render(channel.content, merged, escape_html_in=escape_in)
        fields = (
            [(key, as_text(value)) for key, value in rendered.items()]
            if isinstance(rendered, dict)
            else [("content", as_text(rendered))]
        )
        out.append(ChannelPreview(channel.channel_type, fields))
    return out


async def send_form(
    path: SendPath, app_id: str, template_id: str, entered: Mapping[str, str]
) -> SendForm:
    """The form for ``template_id`` (none chosen: the choice only), with the values
    entered so far and the content they render."""
    form = SendForm(choices=await template_choices(path, app_id), chosen=template_id)
    if not template_id:
        return form
    template = await path.templates.get(app_id, template_id)
    if template is None or not _sendable(template):
        form.errors.append("That template does not exist or has no approved version.")
        return form
    version = template.approved
    assert version is not None
    specs = variable_specs(version)
    form.variables = [
        VariableField(v.key, v.type, v.required, entered.get(v.key, ""), v.name, v.default_value)
        for v in version.variable_schema
    ]
    values, problems = typed_values(specs, entered)
    if problems:
        form.preview_problem = " ".join(problems)
        return form
    try:
        form.preview = render_channels(version, specs, values)
    except MissingVariables as exc:
        form.preview_problem = f"Fill in {', '.join(exc.keys)} to see the content."
    return form


def _in_words(exc: DomainError) -> str:
    error = ERRORS.api_error(exc)
    if error is None:
        return str(exc)
    if error.dev_message and error.dev_message != error.message:
        return f"{error.message} {error.dev_message}"
    return error.message


async def send_to_user(
    path: SendPath,
    app_id: str,
    uid: str,
    template_id: str,
    entered: Mapping[str, str],
    send_key: str | None,
) -> SendOutcome | list[str]:
    """Send ``template_id`` to ``uid`` (realtime); the outcome per channel, or what is
    wrong, in words. ``send_key`` (one per rendered form) makes a form posted twice
    one send."""
    template = await path.templates.get(app_id, template_id) if template_id else None
    specs = variable_specs(template.approved) if template and template.approved else ()
    values, problems = typed_values(specs, entered)
    if not template_id:
        problems.append("Choose a template.")
    if problems:
        return problems
    request = SendRequest(app_id, template_id, [uid], {uid: values} if values else None)
    try:
        outcome = await send_message(
            request,
            templates=path.templates,
            channels=path.channels,
            commands=path.commands,
            registry=path.registry,
            realtime=path.realtime,
            limits=path.limits,
            now=now(),
            idempotency_key=send_key,
        )
    except DomainError as exc:
        return [_in_words(exc)]
    assert isinstance(outcome, RealtimeOutcome)  # one receiver: always realtime
    return await _outcome(path.peers, app_id, uid, outcome)


async def _outcome(peers: Peers, app_id: str, uid: str, sent: RealtimeOutcome) -> SendOutcome:
    receiver = next((r for r in sent.result.receivers if r.uid == uid), None)
    status = receiver.status if receiver else "failed"
    message = (receiver.message or receiver.code) if receiver else "No result for this user."
    channels = await _channel_states(peers, app_id, uid, sent.notification_id)
    if channels is None:  # the dispatcher's states unreadable: the result's, per channel
        channels = [ChannelOutcome(c, None, status, message) for c in sent.channels]
    return SendOutcome(sent.notification_id, status, message, channels)


async def _channel_states(
    peers: Peers, app_id: str, uid: str, notification_id: str
) -> list[ChannelOutcome] | None:
    """The notification's states for ``uid``, as ``GET /v3/campaigns/notifications/{id}``
    reads them (the dispatcher's internal API)."""
    path = (
        f"/internal/apps/{quote(app_id, safe='')}/notifications/{quote(notification_id, safe='')}"
    )
    try:
        answer = await peers.forward("dispatcher", Forward("GET", path, "", b"", ()))
        if answer.status != 200:
            return None
        notification = Data[NotificationPublic].model_validate_json(answer.body).data
    except (PeerUnavailable, ValidationError):
        return None
    for receiver in notification.receivers:
        if receiver.uid == uid:
            return [
                ChannelOutcome(c.channel_type, c.channel_id, c.status, c.message or c.code)
                for c in receiver.channels
            ]
    return None
