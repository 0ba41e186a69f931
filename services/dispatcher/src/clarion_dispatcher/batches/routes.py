"""``/internal/apps/{app_id}/batches/{batch_id}``: a batch's registration, status and
receivers (the gateway registers batches here, and forwards the public reads). A
campaign's send is registered and read here too, under its campaign id."""

from __future__ import annotations

from fastapi import APIRouter, Query

from clarion_shared.api import CONFLICT_RESPONSE, DEFAULT_PER_PAGE, MAX_PER_PAGE, Data, Paged
from clarion_shared.strict_input import MAX_PAGE

from ..errors import RESPONSES
from . import service
from .models import BatchPublic, BatchReceiverPublic, BatchRegistration, ReceiverStatus
from .service import BatchRepository


def router(batches: BatchRepository) -> APIRouter:
    routes = APIRouter(
        prefix="/internal/apps/{app_id}/batches", tags=["batches"], responses=RESPONSES
    )

    @routes.put(
        "/{batch_id}",
        summary="Register a batch or campaign before its commands are published",
        description="A repeat is a no-op; the id registered with the other `mode` is a 409.",
        responses={409: CONFLICT_RESPONSE},
    )
    async def register_batch(
        app_id: str, batch_id: str, body: BatchRegistration
    ) -> Data[BatchPublic]:
        found = await service.register_batch(app_id, batch_id, body, batches=batches)
        return Data(data=found)

    @routes.get("/{batch_id}", summary="A batch's (or campaign's) status and counts")
    async def get_batch(app_id: str, batch_id: str) -> Data[BatchPublic]:
        return Data(data=await service.get_batch(app_id, batch_id, batches=batches))

    @routes.get(
        "/{batch_id}/receivers", summary="A batch's (or campaign's) receivers in send order"
    )
    async def list_receivers(
        app_id: str,
        batch_id: str,
        status: ReceiverStatus | None = None,
        page: int = Query(1, ge=1, le=MAX_PAGE),
        per_page: int = Query(DEFAULT_PER_PAGE, ge=1, le=MAX_PER_PAGE, alias="perPage"),
    ) -> Paged[BatchReceiverPublic]:
        items, total = await service.list_receivers(
            app_id, batch_id, status, page, per_page, batches=batches
        )
        return Paged[BatchReceiverPublic].of(items, total, page, per_page)

    return routes
