"""``/internal/apps/{app_id}/push-notifications/{uid}``: a user's push notifications
(the gateway forwards CometChat's ``/v3/campaigns/push-notifications`` here)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from clarion_shared.api import DEFAULT_PER_PAGE, Data
from clarion_shared.public.push_notifications import PushLimit

from ..delivery.service import DeliveryLog
from ..errors import RESPONSES
from ..notifications.service import NotificationRepository
from . import service
from .models import PushEngagementReport, PushNotificationPublic
from .service import PushReads, PushStateRepository


def router(
    notifications: NotificationRepository,
    deliveries: DeliveryLog,
    states: PushStateRepository,
) -> APIRouter:
    """The push notification routes: records from ``notifications``, outcomes from
    ``deliveries``, the devices' reports kept in ``states``."""
    reads = PushReads(notifications, deliveries, states)
    routes = APIRouter(
        prefix="/internal/apps/{app_id}/push-notifications/{uid}",
        tags=["push notifications"],
        responses=RESPONSES,
    )

    @routes.get("", summary="A user's push notifications, newest first")
    async def list_push(
        app_id: str, uid: str, limit: PushLimit = DEFAULT_PER_PAGE
    ) -> Data[list[PushNotificationPublic]]:
        found = await service.list_push_notifications(app_id, uid, limit, reads=reads)
        return Data(data=found)

    @routes.get("/{push_id}", summary="A push notification")
    async def get_push(app_id: str, uid: str, push_id: str) -> Data[PushNotificationPublic]:
        found = await service.get_push_notification(app_id, uid, push_id, reads=reads)
        return Data(data=found)

    @routes.put("/{push_id}/delivered", summary="Mark delivered (idempotent)")
    async def delivered(app_id: str, uid: str, push_id: str) -> Data[PushNotificationPublic]:
        found = await service.mark(app_id, uid, push_id, "delivered", reads=reads)
        return Data(data=found)

    @routes.put("/{push_id}/clicked", summary="Mark clicked (idempotent)")
    async def clicked(app_id: str, uid: str, push_id: str) -> Data[PushNotificationPublic]:
        found = await service.mark(app_id, uid, push_id, "clicked", reads=reads)
        return Data(data=found)

    @routes.post("/{push_id}/engagement", summary="Report an engagement (idempotent per topic)")
    async def engagement(
        app_id: str,
        uid: str,
        push_id: str,
        body: Annotated[PushEngagementReport | None, Body()] = None,
    ) -> Data[PushNotificationPublic]:
        topic = None if body is None else body.topic
        found = await service.engage(app_id, uid, push_id, topic, reads=reads)
        return Data(data=found)

    return routes
