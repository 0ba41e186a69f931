"""``/internal/apps/{app_id}/webhooks/{webhook_id}/...``: an endpoint's deliveries, an
operator's retry and replay, and what this service knows of the endpoint. The gateway
forwards ``/v3/webhooks/{id}/deliveries...`` and ``/replay`` here once it has checked the
webhook is the caller's."""

from __future__ import annotations

import time

from fastapi import APIRouter, Query

from clarion_shared.api import (
    CONFLICT_RESPONSE,
    DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
    Data,
    Paged,
)
from clarion_shared.errors import Invalid, NotFound
from clarion_shared.public.webhook_deliveries import (
    AttemptPublic,
    DeliveryPublic,
    DeliveryStatus,
    EndpointStatePublic,
    ReplayAccepted,
    ReplayRequest,
)
from clarion_shared.strict_input import MAX_PAGE

from ..endpoints.service import EndpointRepository
from ..errors import RESPONSES
from . import service
from .domain import Delivery
from .service import DeliveryRepository, Queue


def public(delivery: Delivery) -> DeliveryPublic:
    return DeliveryPublic(
        id=delivery.msg_id,
        webhook_id=delivery.webhook_id,
        trigger=delivery.trigger,
        status=delivery.status,
        attempts=[
            AttemptPublic(
                at=a.at,
                status_code=a.status_code,
                error=a.error,
                duration_ms=a.duration_ms,
                response=a.response,
                trigger=a.kind,
            )
            for a in delivery.attempts
        ],
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        payload=service.payload_of(delivery),
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
    )


def router(  # long: one closure per route, all on the same dependencies
    deliveries: DeliveryRepository, queue: Queue, endpoints: EndpointRepository
) -> APIRouter:
    routes = APIRouter(
        prefix="/internal/apps/{app_id}/webhooks/{webhook_id}",
        tags=["deliveries"],
        responses=RESPONSES,
    )

    @routes.get("", summary="What this service knows of an endpoint")
    async def get_endpoint(app_id: str, webhook_id: str) -> Data[EndpointStatePublic]:
        config = await endpoints.get(f"{app_id}:{webhook_id}")
        if config is None:
            raise NotFound("Webhook")
        return Data(
            data=EndpointStatePublic(
                webhook_id=webhook_id,
                enabled=config.enabled,
                updated_at=config.updated_at,
                failing_since=await endpoints.failing_since(config.key),
            )
        )

    @routes.get("/deliveries", summary="The endpoint's deliveries, newest first")
    async def list_deliveries(
        app_id: str,
        webhook_id: str,
        status: DeliveryStatus | None = None,
        page: int = Query(1, ge=1, le=MAX_PAGE),
        per_page: int = Query(DEFAULT_PER_PAGE, ge=1, le=MAX_PER_PAGE, alias="perPage"),
    ) -> Paged[DeliveryPublic]:
        found = await service.list_deliveries(deliveries, app_id, webhook_id, status)
        start = (page - 1) * per_page
        items = [public(d) for d in found[start : start + per_page]]
        return Paged[DeliveryPublic].of(items, len(found), page, per_page)

    @routes.get("/deliveries/{delivery_id}", summary="One delivery and its attempts")
    async def get_delivery(app_id: str, webhook_id: str, delivery_id: str) -> Data[DeliveryPublic]:
        found = await service.get_delivery(deliveries, app_id, webhook_id, delivery_id)
        return Data(data=public(found))

    @routes.post(
        "/deliveries/{delivery_id}/retry",
        status_code=202,
        summary="Send a finished delivery again now",
        responses={409: CONFLICT_RESPONSE},
    )
    async def retry_delivery(
        app_id: str, webhook_id: str, delivery_id: str
    ) -> Data[DeliveryPublic]:
        again = await service.retry_by_hand(
            deliveries, queue, app_id, webhook_id, delivery_id, int(time.time())
        )
        return Data(data=public(again))

    @routes.post("/replay", status_code=202, summary="Send again what failed in a time range")
    async def replay(app_id: str, webhook_id: str, body: ReplayRequest) -> Data[ReplayAccepted]:
        now = int(time.time())
        until = body.until if body.until is not None else now
        if until < body.since:
            raise Invalid("until is before since.", details={"until": until, "since": body.since})
        count = await service.replay(deliveries, queue, app_id, webhook_id, body.since, until, now)
        return Data(
            data=ReplayAccepted(webhook_id=webhook_id, since=body.since, until=until, count=count)
        )

    return routes
