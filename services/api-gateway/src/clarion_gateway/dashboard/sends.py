"""The sends as the dashboard reads them: the Sends page's filters, and the dispatcher's
internal API called as the public routes call it (``proxies.sends``: the listing, a
send's receivers and their CSV; ``live.peers``: a batch's status; ``GET
.../notifications/{id}``: a realtime send's states). One path to the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import get_args
from urllib.parse import quote, urlencode

from pydantic import ValidationError

from clarion_shared.api import Data, Paged
from clarion_shared.public.batches import BatchPublic, ReceiverStatus
from clarion_shared.public.notifications import NotificationPublic
from clarion_shared.public.sends import SendPublic, SendReceiverPublic, SendStatus, SendType

from ..live.peers import PeerBatchStatuses
from ..proxies.peers import Forward, Peers, PeerStream, PeerUnavailable
from ..proxies.sends import sends_path
from ..templates.service import TemplateRepository
from .forms import (
    DEFAULT_PER_PAGE,
    PageQuery,
    app_templates,
    created_problems,
    created_range,
    one_of,
    page_fields,
    text,
)
from .peer_reads import PeerCalls, PeerProblem

SEND_STATUSES: tuple[str, ...] = get_args(SendStatus)
KINDS: tuple[str, ...] = get_args(SendType)
RECEIVER_STATUSES: tuple[str, ...] = get_args(ReceiverStatus)
MAX_SEND_ID = 200
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


class SendsProblem(PeerProblem):
    """The dispatcher could not answer; ``message`` says so in words."""


@dataclass(frozen=True)
class SendsFilter(PageQuery):
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
            kind=one_of(params.get("kind"), KINDS) or "",
            status=one_of(params.get("status"), SEND_STATUSES) or "",
            template=text(params, "templateId", 200),
            created_after=text(params, "createdAfter", 10),
            created_before=text(params, "createdBefore", 10),
            **page_fields(params),
        )

    @property
    def filtered(self) -> bool:
        return any((self.kind, self.status, self.template, self.created_after, self.created_before))

    def problems(self) -> list[str]:
        return created_problems(self.created_after, self.created_before)

    def api_query(self) -> str:
        """The query string of ``GET /v3/campaigns/notifications``."""
        params: dict[str, str | int] = {"page": self.page, "perPage": self.per_page}
        for name, value in (("type", self.kind), ("status", self.status)):
            if value:
                params[name] = value
        if self.template:
            params["templateId"] = self.template
        since, until = created_range(self.created_after, self.created_before)
        if since is not None:
            params["since"] = since
        if until is not None:
            params["until"] = until
        return urlencode(params)


@dataclass(frozen=True)
class ReceiversFilter(PageQuery):
    """A send's receivers as the detail page shows them: by status, one uid, a page."""

    status: str = ""
    uid: str = ""
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> ReceiversFilter:
        return cls(
            status=one_of(params.get("status"), RECEIVER_STATUSES) or "",
            uid=text(params, "uid", 100),
            **page_fields(params),
        )

    def csv_query(self) -> str:
        """The filters alone: what ``.../receivers.csv`` takes (every page)."""
        return urlencode({k: v for k, v in (("status", self.status), ("uid", self.uid)) if v})

    def api_query(self) -> str:
        """The query string of ``GET /v3/campaigns/notifications/{id}/receivers``."""
        paged = urlencode({"page": self.page, "perPage": self.per_page})
        return f"{self.csv_query()}&{paged}" if self.status or self.uid else paged


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
        self._peer = PeerCalls(peers, "dispatcher", "The dispatcher", SendsProblem)
        self._batches = PeerBatchStatuses(peers)

    async def page(self, app_id: str, wanted: SendsFilter) -> Paged[SendPublic]:
        body = await self._peer.get(sends_path(app_id), wanted.api_query())
        if body is None:
            raise SendsProblem("The dispatcher has no sends listing.")
        return self._peer.parse(Paged[SendPublic], body)

    async def find(self, app_id: str, send_id: str) -> SendPublic | None:
        """The send as the listing shows it (batch counts read now); None when the app
        has no such send. A batch's status (or a realtime send's states) gives its
        creation second, and the listing of that second holds its entry."""
        if not send_id or len(send_id) > MAX_SEND_ID:
            return None
        try:
            batch = await self._batches.get(app_id, send_id)
        except (PeerUnavailable, ValidationError) as exc:
            raise self._peer.unavailable() from exc
        if batch is not None:
            created, fallback = batch.created_at, batch_send(batch)
        else:
            notification = await self._notification(app_id, send_id)
            if notification is None:
                return None
            created, fallback = notification.created_at, realtime_send(notification)
        query = urlencode({"since": created, "until": created, "perPage": _SAME_SECOND})
        body = await self._peer.get(sends_path(app_id), query)
        listed = self._peer.parse(Paged[SendPublic], body) if body is not None else None
        entry = next((s for s in listed.data if s.id == send_id), None) if listed else None
        return entry or fallback

    async def receivers(
        self, app_id: str, send_id: str, wanted: ReceiversFilter
    ) -> Paged[SendReceiverPublic] | None:
        path = sends_path(app_id, f"/{quote(send_id, safe='')}/receivers")
        body = await self._peer.get(path, wanted.api_query())
        return None if body is None else self._peer.parse(Paged[SendReceiverPublic], body)

    async def export(self, app_id: str, send_id: str, wanted: ReceiversFilter) -> PeerStream | None:
        """The receivers' CSV as the dispatcher streams it; None (closed) for a 404."""
        path = sends_path(app_id, f"/{quote(send_id, safe='')}/receivers.csv")
        try:
            opened = await self._peer.peers.stream(
                self._peer.peer, Forward("GET", path, wanted.csv_query(), b"", ())
            )
        except PeerUnavailable as exc:
            raise self._peer.unavailable() from exc
        if opened.status != 200:
            await opened.aclose()
            if opened.status == 404:
                return None
            raise SendsProblem(f"The dispatcher answered with an error ({opened.status}).")
        return opened

    async def _notification(self, app_id: str, send_id: str) -> NotificationPublic | None:
        path = f"/internal/apps/{quote(app_id, safe='')}/notifications/{quote(send_id, safe='')}"
        body = await self._peer.get(path, "")
        return None if body is None else self._peer.parse(Data[NotificationPublic], body).data


async def template_names(templates: TemplateRepository, app_id: str) -> dict[str, str]:
    """The app's templates by id (the Template filter's choices, and names in lists)."""
    return {t.template_id: t.name for t in await app_templates(templates, app_id)}
