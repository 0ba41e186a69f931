"""The Sends page: every direct send and batch with its per-receiver status and reason,
filterable and exportable as CSV (``/dashboard/apps/{appId}/sends...``).

The pages read the dispatcher as ``GET /v3/campaigns/notifications...`` does
(``sends.PeerSends``); a batch still running is watched as ``GET
.../notifications/batches/{id}/events`` watches it (``live.service.watch``), its
snapshots sent as HTML fragments over server-sent events. Pages work without
JavaScript; htmx asks for the receivers alone (``HX-Target: send-receivers``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask

from clarion_shared.errors import NotFound

from ..live import service as live
from ..live.models import BatchPublic, Snapshot
from ..live.peers import PeerBatchStatuses
from ..proxies.peers import PeerUnavailable
from ..proxies.sends import csv_disposition
from .forms import texts
from .kit import PageKit
from .peer_reads import read_or_note
from .sends import (
    KINDS,
    RECEIVER_STATUSES,
    SEND_STATUSES,
    PeerSends,
    ReceiversFilter,
    SendsFilter,
    SendsProblem,
    reason,
    template_names,
)
from .streams import event_stream, first_snapshot, fragment_events
from .web import PREFIX, Member, PageProblem, is_htmx

RECEIVERS_TARGET = "send-receivers"
PROGRESS_FRAGMENT = "partials/sends_progress.html"


def _no_send(send_id: str) -> PageProblem:
    # Another app's send looks like one that does not exist (never 403).
    return PageProblem(
        404, "No such send", f"This app has no send {send_id[:200]}, or it is not yours to see."
    )


def _unavailable(exc: SendsProblem) -> PageProblem:
    return PageProblem(503, "Sends unavailable", exc.message)


def _template_choices(templates: dict[str, str], chosen: str) -> list[tuple[str, str]]:
    """The Template select's (id, words): by name, and the one chosen even if gone."""
    by_name = sorted(templates.items(), key=lambda item: (item[1].casefold(), item[0]))
    if chosen and chosen not in templates:
        by_name.append((chosen, chosen))
    return [(tid, name if name == tid else f"{name} ({tid})") for tid, name in by_name]


def router(kit: PageKit) -> APIRouter:  # long: one closure per page
    routes = APIRouter(prefix=f"{PREFIX}/apps/{{app_id}}", include_in_schema=False)
    # Not an Annotated alias: annotations are strings here, resolved in module scope.
    member_of = Depends(kit.dashboard.member)
    sends = PeerSends(kit.adapters.peers)
    read_batch = live.batch_reader(PeerBatchStatuses(kit.adapters.peers))

    async def names(app_id: str) -> dict[str, str]:
        return await template_names(kit.uses.templates, app_id)

    @routes.get("/sends")
    async def list_sends(request: Request, member: Member = member_of) -> Response:
        wanted = SendsFilter.parse(texts(request.query_params))
        problems = wanted.problems()
        page = await read_or_note(sends.page(member.app.app_id, wanted), problems)
        templates = await names(member.app.app_id)
        context = {
            "filter": wanted,
            "page": page,
            "problems": problems,
            "statuses": SEND_STATUSES,
            "kinds": KINDS,
            "templates": templates,
            "template_choices": _template_choices(templates, wanted.template),
        }
        return kit.dashboard.render(request, "sends.html", context)

    @routes.get("/sends/{send_id}")
    async def send_detail(request: Request, send_id: str, member: Member = member_of) -> Response:
        app_id = member.app.app_id
        wanted = ReceiversFilter.parse(texts(request.query_params))
        context: dict[str, Any] = {
            "send_id": send_id,
            "filter": wanted,
            "receiver_statuses": RECEIVER_STATUSES,
            "reason": reason,
        }
        try:
            if is_htmx(request) and request.headers.get("hx-target") == RECEIVERS_TARGET:
                context["receivers"] = await sends.receivers(app_id, send_id, wanted)
                if context["receivers"] is None:
                    raise _no_send(send_id)
                context["receivers_only"] = True
                return kit.dashboard.render(request, "partials/sends_receivers.html", context)
            send = await sends.find(app_id, send_id)
            if send is None:
                raise _no_send(send_id)
            context["receivers"] = await sends.receivers(app_id, send_id, wanted)
        except SendsProblem as exc:
            raise _unavailable(exc) from exc
        if context["receivers"] is None:
            raise _no_send(send_id)
        templates = await names(app_id)
        context.update(
            send=send,
            progress=send,
            template_name=templates.get(send.template_id or ""),
            live=send.type == "batch" and send.status not in live.FINAL_BATCH,
        )
        return kit.dashboard.render(request, "send_detail.html", context)

    @routes.get("/sends/{send_id}/receivers.csv")
    async def export_receivers(
        request: Request, send_id: str, member: Member = member_of
    ) -> Response:
        """The same CSV as ``GET .../notifications/{id}/receivers.csv``, streamed from
        the dispatcher (the browser holds no API key)."""
        wanted = ReceiversFilter.parse(texts(request.query_params))
        try:
            opened = await sends.export(member.app.app_id, send_id, wanted)
        except SendsProblem as exc:
            raise _unavailable(exc) from exc
        if opened is None:
            raise _no_send(send_id)
        headers = {k: v for k, v in opened.headers if k.lower() == "content-type"}
        headers["content-disposition"] = csv_disposition(send_id)
        return StreamingResponse(
            opened.chunks, headers=headers, background=BackgroundTask(opened.aclose)
        )

    @routes.get("/sends/{send_id}/events")
    async def send_events(request: Request, send_id: str, member: Member = member_of) -> Response:
        """A batch's progress as HTML fragments (``progress``, then ``done``): what
        ``.../batches/{id}/events`` streams as JSON. 404 before the stream starts."""
        app_id = member.app.app_id
        snapshots = live.watch(app_id, send_id, read=read_batch, hub=kit.adapters.live)
        try:
            first = await first_snapshot(snapshots)
        except NotFound as exc:
            raise _no_send(send_id) from exc
        except (PeerUnavailable, ValidationError) as exc:
            raise PageProblem(
                503, "Sends unavailable", "The dispatcher did not answer. Try again in a moment."
            ) from exc
        fragment = kit.dashboard.env.get_template(PROGRESS_FRAGMENT)

        def render(snapshot: Snapshot) -> str:
            assert isinstance(snapshot.data, BatchPublic)
            return fragment.render(progress=snapshot.data)

        return event_stream(fragment_events(snapshots, first, render))

    return routes
