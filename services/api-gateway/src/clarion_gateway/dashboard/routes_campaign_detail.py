"""The Campaign detail page: counts and recipients by status, live over server-sent events
(``/dashboard/apps/{appId}/campaigns/{campaignId}``)."""

from __future__ import annotations

from fastapi import APIRouter

from .kit import PageKit


def router(kit: PageKit) -> APIRouter:
    return APIRouter()
