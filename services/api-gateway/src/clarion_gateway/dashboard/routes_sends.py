"""The Sends page: every direct send and batch with its per-receiver status and reason,
filterable and exportable as CSV (``/dashboard/apps/{appId}/sends...``)."""

from __future__ import annotations

from fastapi import APIRouter

from .kit import PageKit


def router(kit: PageKit) -> APIRouter:
    return APIRouter()
