"""``/internal/apps/{app_id}/sends``: every send of the app, and each one's receivers
(as a page, or a CSV export streamed a chunk at a time). The gateway forwards here."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from clarion_shared.api import DEFAULT_PER_PAGE, MAX_PER_PAGE, Paged
from clarion_shared.csv_export import csv_line
from clarion_shared.public.sends import (
    RECEIVER_CSV_COLUMNS,
    RECEIVERS_CSV_RESPONSE,
    receiver_query,
    send_query,
)
from clarion_shared.strict_input import MAX_PAGE

from ..batches.service import BatchRepository
from ..errors import RESPONSES
from ..notifications.service import NotificationRepository
from . import service
from .domain import csv_rows
from .models import ReceiverQuery, SendPublic, SendQuery, SendReceiverPublic
from .service import SendIndex


def router(
    sends: SendIndex, batches: BatchRepository, notifications: NotificationRepository
) -> APIRouter:
    routes = APIRouter(prefix="/internal/apps/{app_id}/sends", tags=["sends"], responses=RESPONSES)

    @routes.get(
        "", summary="The app's sends, newest first (type, status, templateId, since, until)"
    )
    async def list_sends(
        app_id: str,
        query: Annotated[SendQuery, Depends(send_query)],
        page: int = Query(1, ge=1, le=MAX_PAGE),
        per_page: int = Query(DEFAULT_PER_PAGE, ge=1, le=MAX_PER_PAGE, alias="perPage"),
    ) -> Paged[SendPublic]:
        items, total = await service.list_sends(
            app_id, query, page, per_page, sends=sends, batches=batches
        )
        return Paged[SendPublic].of(items, total, page, per_page)

    @routes.get("/{send_id}/receivers", summary="A send's receivers in send order (status, uid)")
    async def list_receivers(
        app_id: str, send_id: str, query: Annotated[ReceiverQuery, Depends(receiver_query)]
    ) -> Paged[SendReceiverPublic]:
        items, total = await service.list_receivers(
            app_id, send_id, query, sends=sends, batches=batches, notifications=notifications
        )
        return Paged[SendReceiverPublic].of(items, total, query.page, query.per_page)

    @routes.get(
        "/{send_id}/receivers.csv",
        summary="A send's receivers as CSV, one row per channel (status, uid)",
        response_class=StreamingResponse,
        responses=RECEIVERS_CSV_RESPONSE,
    )
    async def export_receivers(
        app_id: str, send_id: str, query: Annotated[ReceiverQuery, Depends(receiver_query)]
    ) -> StreamingResponse:
        pages = await service.export_receivers(
            app_id, send_id, query, sends=sends, batches=batches, notifications=notifications
        )
        return StreamingResponse(
            _csv(pages),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": _attachment(send_id)},
        )

    return routes


def _attachment(send_id: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "_", send_id)[:100]
    return f'attachment; filename="{name}-receivers.csv"'


async def _csv(pages: AsyncIterator[list[SendReceiverPublic]]) -> AsyncIterator[str]:
    yield csv_line(RECEIVER_CSV_COLUMNS)
    async for receivers in pages:
        yield "".join(csv_line(row) for row in csv_rows(receivers))
