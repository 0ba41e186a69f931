"""The Templates pages: the list and a template's detail with a live preview
(``/dashboard/apps/{appId}/templates...``)."""

from __future__ import annotations

from fastapi import APIRouter

from .kit import PageKit


def router(kit: PageKit) -> APIRouter:
    return APIRouter()
