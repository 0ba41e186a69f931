"""The Webhooks pages: endpoints and their delivery attempts, "Retry"
(``/dashboard/apps/{appId}/webhooks...``)."""

from __future__ import annotations

from fastapi import APIRouter

from .kit import PageKit


def router(kit: PageKit) -> APIRouter:
    return APIRouter()
