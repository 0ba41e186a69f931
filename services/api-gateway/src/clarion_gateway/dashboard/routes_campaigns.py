"""The Campaigns pages: the list and "New campaign" (template and version, audience by CSV
upload with a dry run or by "Pick users", then "Send now" or "Schedule")
(``/dashboard/apps/{appId}/campaigns...``)."""

from __future__ import annotations

from fastapi import APIRouter

from .kit import PageKit


def router(kit: PageKit) -> APIRouter:
    return APIRouter()
