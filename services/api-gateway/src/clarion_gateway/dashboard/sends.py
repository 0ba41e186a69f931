"""The sends as the dashboard reads them: the Sends page's filters, and the dispatcher's
internal API called as the public routes call it (``proxies.sends``: the listing, a
send's receivers and their CSV; ``live.peers``: a batch's status; ``GET
.../notifications/{id}``: a realtime send's states). One path to the data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import TypeVar, get_args
from urllib.parse import quote, urlencode

from pydantic import BaseModel, ValidationError

from clarion_shared.api import Data, Paged
from clarion_shared.cursor import PageRequest
from clarion_shared.public.batches import BatchPublic, ReceiverStatus
from clarion_shared.public.notifications import NotificationPublic
from clarion_shared.public.sends import SendPublic, SendReceiverPublic, SendStatus, SendType

from ..live.peers import PeerBatchStatuses
from ..paging import PageOf
from ..proxies.peers import Forward, Peers, PeerStream, PeerUnavailable
from ..proxies.sends import sends_path
from ..templates.service import TemplateQuery, TemplateRepository, list_templates
from .users import DEFAULT_PER_PAGE, PER_PAGE_CHOICES, bounded_int, day_seconds

M = TypeVar("M", bound=BaseModel)

SEND_STATUSES: tuple[str, ...] = get_args(SendStatus)
KINDS: tuple[str, ...] = get_args(SendType)
RECEIVER_STATUSES: tuple[str, ...] = get_args(ReceiverStatus)
MAX_SEND_ID = 200
_MAX_TEMPLATES = 500
_SAME_SECOND = 100  # the listing's largest page: sends created in one second, looked through

# A failure's code in words, for a receiver whose message is missing.
_REASONS = {
    "ERR_USER_NOT_FOUND": "The app has no user with this uid.",
    "ERR_INVALID_VARIABLES": "A required variable has no value.",
    "ERR_NO_CONTACT_POINT": "The user has no contact point for this channel.",
    "ERR_RENDER_FAILED": "The template could not be rendered for this user.",
    "ERR_CONTENT_TOO_LARGE": "The rendered content is too large.",
    "ERR_STORE_FAILED": "The notification could not be stored.",
}


def reason(code: str | None, message: str | None) -> str:
    """Why a receiver (or a channel) failed, in words."""
    if message:
        return message
    if code:
        return _REASONS.get(code, "It failed.")
    return ""


class SendsProblem(Exception):
    """The dispatcher could not answer; ``message`` says so in words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _choice(value: str | None, choices: tuple[str, ...]) -> str:
    return value if value in choices else ""


@dataclass(frozen=True)
class SendsFilter:
    """The Sends page's query string, as typed: what the form shows back."""

    kind: str = ""
    status: str = ""
    template: str = ""
    created_after: str = ""
    created_before: str = ""
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> SendsFilter:
        """Lenient: a value the page cannot use is dropped (a bad date is said in words
        by ``problems``)."""
        return cls(
            kind=_choice(params.get("kind"), KINDS),
            status=_choice(params.get("status"), SEND_STATUSES),
            template=params.get("templateId", "").strip()[:200],
            created_after=params.get("createdAfter", "").strip()[:10],
            created_before=params.get("createdBefore", "").strip()[:10],
            page=bounded_int(params.get("page"), 1, 1, 100_000),
            per_page=bounded_int(params.get("perPage"), DEFAULT_PER_PAGE, 1, PER_PAGE_CHOICES[-1]),
        )

    @property
    def filtered(self) -> bool:
        return any((self.kind, self.status, self.template, self.created_after, self.created_before))

    def problems(self) -> list[str]:
        return [
            f"{label} must be a date (YYYY-MM-DD)."
            for label, value in (
                ("Created after", self.created_after),
                ("Created before", self.created_before),
            )
            if value and day_seconds(value, end=False) is None
        ]

    def api_query(self) -> str:
        """The query string of ``GET /v3/campaigns/notifications``."""
        params: dict[str, str | int] = {"page": self.page, "perPage": self.per_page}
        for name, value in (("type", self.kind), ("status", self.status)):
            if value:
                params[name] = value
        if self.template:
            params["templateId"] = self.template
        since = day_seconds(self.created_after, end=False) if self.created_after else None
        until = day_seconds(self.created_before, end=True) if self.created_before else None
        if since is not None:
            params["since"] = since
        if until is not None:
            params["until"] = until
        return urlencode(params)

    def page_query(self, **changes: int | str) -> str:
        """This page's own query string with ``changes`` (paging links)."""
        changed = replace(self, **changes)  # type: ignore[arg-type]
        names = {
            "template": "templateId",
            "created_after": "createdAfter",
            "created_before": "createdBefore",
            "per_page": "perPage",
        }
        values = {names.get(k, k): v for k, v in asdict(changed).items()}
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


@dataclass(frozen=True)
class ReceiversFilter:
    """A send's receivers as the detail page shows them: by status, one uid, a page."""

    status: str = ""
    uid: str = ""
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> ReceiversFilter:
        return cls(
            status=_choice(params.get("status"), RECEIVER_STATUSES),
            uid=params.get("uid", "").strip()[:100],
            page=bounded_int(params.get("page"), 1, 1, 100_000),
            per_page=bounded_int(params.get("perPage"), DEFAULT_PER_PAGE, 1, PER_PAGE_CHOICES[-1]),
        )

    def csv_query(self) -> str:
        """The filters alone: what ``.../receivers.csv`` takes (every page)."""
        return urlencode({k: v for k, v in (("status", self.status), ("uid", self.uid)) if v})

    def api_query(self) -> str:
        """The query string of ``GET /v3/campaigns/notifications/{id}/receivers``."""
        paging = urlencode({"page": self.page, "perPage": self.per_page})
        return f"{self.csv_query()}&{paging}" if self.status or self.uid else paging

    def page_query(self, **changes: int | str) -> str:
        changed = replace(self, **changes)  # type: ignore[arg-type]
        values = {"status": changed.status, "uid": changed.uid, "page": changed.page}
        values["perPage"] = changed.per_page
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


def _error_message(body: bytes, fallback: str) -> str:
    try:
        error = json.loads(body).get("error", {})
    except (ValueError, AttributeError):
        return fallback
    message = error.get("devMessage") or error.get("message")
    return str(message) if message else fallback


def _receiver_status(states: list[str]) -> str:
    """API.md, Finality: sent once all are final and one is sent; failed if all failed."""
    if not states or "queued" in states:
        return "pending"
    return "sent" if "sent" in states else "failed"


def realtime_send(notification: NotificationPublic) -> SendPublic:
    """A realtime send from its states (when the listing has no entry for it yet)."""
    states = [_receiver_status([c.status for c in r.channels]) for r in notification.receivers]
    sent, failed = states.count("sent"), states.count("failed")
    pending = len(states) - sent - failed
    if pending:
        status = "dispatching"
    elif not failed:
        status = "completed"
    else:
        status = "partially_failed" if sent else "failed"
    kinds = {c.channel_type: None for r in notification.receivers for c in r.channels}
    return SendPublic.model_validate(
        {
            "id": notification.notification_id,
            "type": "realtime",
            "mode": "direct",
            "template_id": notification.template_id,
            "template_version": notification.template_version,
            "channels": list(kinds),
            "status": status,
            "total": len(states),
            "sent": sent,
            "delivered": None,
            "failed": failed,
            "pending": pending,
            "created_at": notification.created_at,
            "completed_at": None if pending else notification.created_at,
        }
    )


def batch_send(batch: BatchPublic) -> SendPublic:
    """A batch from its status (when the listing has no entry for it yet)."""
    values = batch.model_dump(exclude={"batch_id"})
    values.update(id=batch.batch_id, type="batch", mode="direct", channels=[])
    return SendPublic.model_validate({**values, "template_id": None, "template_version": None})


class PeerSends:
    """The dispatcher's sends API, over the peers' client (``proxies.peers``)."""

    def __init__(self, peers: Peers) -> None:
        self._peers = peers
        self._batches = PeerBatchStatuses(peers)

    async def page(self, app_id: str, wanted: SendsFilter) -> Paged[SendPublic]:
        body = await self._get(sends_path(app_id), wanted.api_query())
        if body is None:
            raise SendsProblem("The dispatcher has no sends listing.")
        return self._parse(Paged[SendPublic], body)

    async def find(self, app_id: str, send_id: str) -> SendPublic | None:
        """The send as the listing shows it (batch counts read now); None when the app
        has no such send. A batch's status (or a realtime send's states) gives its
        creation second, and the listing of that second holds its entry."""
        if not send_id or len(send_id) > MAX_SEND_ID:
            return None
        try:
            batch = await self._batches.get(app_id, send_id)
        except (PeerUnavailable, ValidationError) as exc:
            raise SendsProblem("The dispatcher did not answer. Try again in a moment.") from exc
        if batch is not None:
            created, fallback = batch.created_at, batch_send(batch)
        else:
            notification = await self._notification(app_id, send_id)
            if notification is None:
                return None
            created, fallback = notification.created_at, realtime_send(notification)
        query = urlencode({"since": created, "until": created, "perPage": _SAME_SECOND})
        body = await self._get(sends_path(app_id), query)
        listed = self._parse(Paged[SendPublic], body) if body is not None else None
        entry = next((s for s in listed.data if s.id == send_id), None) if listed else None
        return entry or fallback

    async def receivers(
        self, app_id: str, send_id: str, wanted: ReceiversFilter
    ) -> Paged[SendReceiverPublic] | None:
        path = sends_path(app_id, f"/{quote(send_id, safe='')}/receivers")
        body = await self._get(path, wanted.api_query())
        return None if body is None else self._parse(Paged[SendReceiverPublic], body)

    async def export(self, app_id: str, send_id: str, wanted: ReceiversFilter) -> PeerStream | None:
        """The receivers' CSV as the dispatcher streams it; None (closed) for a 404."""
        path = sends_path(app_id, f"/{quote(send_id, safe='')}/receivers.csv")
        try:
            opened = await self._peers.stream(
                "dispatcher", Forward("GET", path, wanted.csv_query(), b"", ())
            )
        except PeerUnavailable as exc:
            raise SendsProblem("The dispatcher did not answer. Try again in a moment.") from exc
        if opened.status != 200:
            await opened.aclose()
            if opened.status == 404:
                return None
            raise SendsProblem(f"The dispatcher answered with an error ({opened.status}).")
        return opened

    async def _notification(self, app_id: str, send_id: str) -> NotificationPublic | None:
        path = f"/internal/apps/{quote(app_id, safe='')}/notifications/{quote(send_id, safe='')}"
        body = await self._get(path, "")
        return None if body is None else self._parse(Data[NotificationPublic], body).data

    def _parse(self, model: type[M], body: bytes) -> M:
        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            raise SendsProblem("The dispatcher answered something unexpected.") from exc

    async def _get(self, path: str, query: str) -> bytes | None:
        """The answer's body; None for a 404."""
        try:
            answer = await self._peers.forward("dispatcher", Forward("GET", path, query, b"", ()))
        except PeerUnavailable as exc:
            raise SendsProblem("The dispatcher did not answer. Try again in a moment.") from exc
        if answer.status == 404:
            return None
        if answer.status == 400:
            raise SendsProblem(
                "The dispatcher refused the filters: "
                + _error_message(answer.body, "they are not valid.")
            )
        if answer.status != 200:
            raise SendsProblem(
                f"The dispatcher answered with an error ({answer.status}). Try again."
            )
        return answer.body


async def template_names(templates: TemplateRepository, app_id: str) -> dict[str, str]:
    """The app's templates by id (the Template filter's choices, and names in lists)."""
    query = TemplateQuery(paging=PageRequest(1, _MAX_TEMPLATES, "name", "asc"))
    found = await list_templates(templates, app_id, query)
    items = found.items if isinstance(found, PageOf) else []
    return {t.template_id: t.name for t in items}
