"""``GET /internal/apps/{app_id}/notifications/{notification_id}``: a send's states."""

from __future__ import annotations

from fastapi import APIRouter

from clarion_shared.api import Data

from ..errors import RESPONSES
from . import service
from .models import NotificationPublic
from .service import DeliveryOutcomes, NotificationRepository


def router(
    notifications: NotificationRepository, deliveries: DeliveryOutcomes | None = None
) -> APIRouter:
    routes = APIRouter(
        prefix="/internal/apps/{app_id}/notifications",
        tags=["notifications"],
        responses=RESPONSES,
    )

    @routes.get("/{notification_id}", summary="A send's per receiver, per channel states")
    async def get_notification(app_id: str, notification_id: str) -> Data[NotificationPublic]:
        found = await service.get_notification(
            app_id, notification_id, notifications=notifications, deliveries=deliveries
        )
        return Data(data=found)

    return routes
