"""The Sends page: every direct send and batch with its per-receiver status and reason,
filterable and exportable as CSV (``/dashboard/apps/{appId}/sends...``).

The pages read the dispatcher as ``GET /v3/campaigns/notifications...`` does
(``sends.PeerSends``); a batch still running is watched as ``GET
.../notifications/batches/{id}/events`` watches it (``live.service.watch``), its
snapshots sent as HTML fragments over server-sent events. Pages work without
JavaScript; htmx asks for the receivers alone (``HX-Target: send-receivers``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask

from clarion_shared.errors import NotFound
from clarion_shared.logging import get_logger
from clarion_shared.sse import SSE_HEADERS, encode_event, with_heartbeat

from ..live import service as live
from ..live.models import BatchPublic, Snapshot
from ..live.peers import PeerBatchStatuses
from ..proxies.peers import PeerUnavailable
from ..proxies.sends import csv_disposition
from .kit import PageKit
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
from .users import PER_PAGE_CHOICES
from .web import PREFIX, Member, PageProblem, is_htmx

log = get_logger(__name__)

HEARTBEAT_S = 15.0
RECEIVERS_TARGET = "send-receivers"
PROGRESS_FRAGMENT = "partials/sends_progress.html"

Render = Callable[[Snapshot], str]


def _texts(items: Mapping[str, Any]) -> dict[str, str]:
    return {k: v for k, v in items.items() if isinstance(v, str)}


def _no_send(send_id: str) -> PageProblem:
    # Another app's send looks like one that does not exist (never 403).
    return PageProblem(
        404, "No such send", f"This app has no send {send_id[:200]}, or it is not yours to see."
    )


def _unavailable(exc: SendsProblem) -> PageProblem:
    return PageProblem(503, "Sends unavailable", exc.message)


async def fragment_events(
    snapshots: AsyncGenerator[Snapshot, None], first: Snapshot, render: Render
) -> AsyncIterator[str]:
    """``first``, then the rest of ``snapshots``, as server-sent events of HTML:
    ``progress`` for each, ``done`` for the final one; the stream then ends (as it
    does when the dispatcher stops answering: the browser's EventSource reconnects)."""
    number, snapshot = 0, first
    try:
        while True:
            number += 1
            kind = "done" if snapshot.final else "progress"
            yield encode_event(kind, render(snapshot), str(number))
            if snapshot.final:
                return
            try:
                following = await anext(snapshots, None)
            except (PeerUnavailable, ValidationError) as exc:
                log.warning("dashboard.send_stream_ended", error=repr(exc))
                return
            if following is None:
                return
            snapshot = following
    finally:
        await snapshots.aclose()  # the watch's subscription ends with the stream


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
        wanted = SendsFilter.parse(_texts(request.query_params))
        problems = wanted.problems()
        page = None
        try:
            page = await sends.page(member.app.app_id, wanted)
        except SendsProblem as exc:
            problems.append(exc.message)
        templates = await names(member.app.app_id)
        choices = sorted(templates.items(), key=lambda item: (item[1].casefold(), item[0]))
        if wanted.template and wanted.template not in templates:
            choices.append((wanted.template, wanted.template))
        context = {
            "filter": wanted,
            "page": page,
            "problems": problems,
            "statuses": SEND_STATUSES,
            "kinds": KINDS,
            "templates": templates,
            "template_choices": choices,
            "per_page_choices": PER_PAGE_CHOICES,
        }
        return kit.dashboard.render(request, "sends.html", context)

    @routes.get("/sends/{send_id}")
    async def send_detail(request: Request, send_id: str, member: Member = member_of) -> Response:
        app_id = member.app.app_id
        wanted = ReceiversFilter.parse(_texts(request.query_params))
        context: dict[str, Any] = {
            "send_id": send_id,
            "filter": wanted,
            "receiver_statuses": RECEIVER_STATUSES,
            "per_page_choices": PER_PAGE_CHOICES,
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
        wanted = ReceiversFilter.parse(_texts(request.query_params))
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
            first = await anext(snapshots)
        except NotFound as exc:
            await snapshots.aclose()
            raise _no_send(send_id) from exc
        except (PeerUnavailable, ValidationError) as exc:
            await snapshots.aclose()
            raise PageProblem(
                503, "Sends unavailable", "The dispatcher did not answer. Try again in a moment."
            ) from exc
        except BaseException:
            await snapshots.aclose()
            raise
        fragment = kit.dashboard.env.get_template(PROGRESS_FRAGMENT)

        def render(snapshot: Snapshot) -> str:
            assert isinstance(snapshot.data, BatchPublic)
            return fragment.render(progress=snapshot.data)

        return StreamingResponse(
            with_heartbeat(fragment_events(snapshots, first, render), HEARTBEAT_S),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )

    return routes
