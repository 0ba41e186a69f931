"""Server-sent events of a send's progress (a Clarion extension):

- ``GET /v3/campaigns/campaigns/{id}/events``: the campaign and its recipients by state
- ``GET /v3/campaigns/notifications/batches/{batchId}/events``: the batch's status

Each: ``event: progress`` with the snapshot's JSON at once and after each change (at
most one per 250 ms), ``event: done`` with the final one, then the stream ends; a
``: keep-alive`` comment every 15 s of quiet. Another app's id is 404 before the stream
starts.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from clarion_shared.api import CLIENT_ERRORS, PEER_RESPONSES, Responses, error_response
from clarion_shared.sse import SSE_HEADERS, stream_media, with_heartbeat

from ..web import Auth
from . import service
from .hub import LiveHub
from .service import Reader

HEARTBEAT_S = 15.0

_EXAMPLE = (
    'event: progress\nid: 1\ndata: {"batchId": "bat_1", "status": "dispatching", ...}\n\n'
    'event: done\nid: 2\ndata: {"batchId": "bat_1", "status": "completed", ...}\n\n'
)


def _stream_response(shows: str) -> Responses:
    return {
        200: {
            "description": f"Server-sent events: `progress` events (`data:` {shows}) at once "
            "and after each change, at most one per 250 ms; `done` with the final one, "
            "then the stream ends; a `: keep-alive` comment every 15 s of quiet.",
            "content": {"text/event-stream": stream_media(("progress", "done"), _EXAMPLE)},
        }
    }


def router(
    auth: Auth,
    hub: LiveHub,
    campaigns: Reader,
    batches: Reader,
    heartbeat_s: float = HEARTBEAT_S,
    coalesce_s: float = service.COALESCE_S,
) -> APIRouter:
    routes = APIRouter(
        prefix="/v3/campaigns",
        dependencies=[Depends(auth.require_app)],
        responses=CLIENT_ERRORS,
    )
    app_of_key = Depends(auth.require_app)

    async def stream(app_id: str, send_id: str, read: Reader) -> StreamingResponse:
        snapshots = service.watch(app_id, send_id, read=read, hub=hub, coalesce_s=coalesce_s)
        try:
            first = await anext(snapshots)  # NotFound (404) before the stream starts
        except BaseException:
            await snapshots.aclose()
            raise
        events = service.sse_events(snapshots, first)
        return StreamingResponse(
            with_heartbeat(events, heartbeat_s),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )

    @routes.get(
        "/campaigns/{campaign_id}/events",
        tags=["Campaigns"],
        summary="Server-sent events: the campaign's progress until it is final",
        response_class=StreamingResponse,
        responses={
            **_stream_response("the campaign object and its recipients per state"),
            404: error_response("ERR_NOT_FOUND: no such campaign"),
        },
    )
    async def campaign_events(campaign_id: str, app_id: str = app_of_key) -> StreamingResponse:
        return await stream(app_id, campaign_id, campaigns)

    @routes.get(
        "/notifications/batches/{batch_id}/events",
        tags=["Notifications"],
        summary="Server-sent events: the batch's status until it is final",
        response_class=StreamingResponse,
        responses={
            **_stream_response("the batch status object"),
            **PEER_RESPONSES,
            404: error_response("ERR_NOT_FOUND: no such batch"),
        },
    )
    async def batch_events(batch_id: str, app_id: str = app_of_key) -> StreamingResponse:
        return await stream(app_id, batch_id, batches)

    return routes
