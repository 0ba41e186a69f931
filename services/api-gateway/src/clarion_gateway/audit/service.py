"""The audit log's use cases and the repository they need.

Other packages record with one call, the ``Auditor`` the dashboard hands them::

    await auditor.record(operator.email, app_id, "webhook.create", webhook_id, {"name": name})
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from clarion_shared.contracts.base import JsonObject
from clarion_shared.ids import new_id, now
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger

from ..paging import Page, PageOf
from .domain import ACTIONS, MAX_DETAIL_BYTES, AuditEntry

log = get_logger(__name__)


class AuditLog(Resource, Protocol):
    """Append-only: entries are added and listed, never changed."""

    async def append(self, entry: AuditEntry) -> None: ...

    async def list_for_app(
        self, app_id: str, offset: int, limit: int
    ) -> tuple[list[AuditEntry], int]:
        """The app's entries, newest first, and how many there are."""
        ...


def _bounded(detail: JsonObject) -> JsonObject:
    if len(json.dumps(detail, default=str)) <= MAX_DETAIL_BYTES:
        return detail
    return {"truncated": True}


@dataclass(frozen=True)
class Auditor:
    log: AuditLog

    async def record(
        self,
        actor: str,
        app_id: str | None,
        action: str,
        target: str | None = None,
        detail: JsonObject | None = None,
    ) -> AuditEntry:
        """Append one entry, timed now. ``action`` is one of ``domain.ACTIONS``."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}: add it to audit.domain.ACTIONS")
        entry = AuditEntry(
            entry_id=new_id("aud_"),
            app_id=app_id,
            actor=actor,
            action=action,
            target=target,
            at=now(),
            detail=_bounded(detail or {}),
        )
        await self.log.append(entry)
        log.info("audit.recorded", app_id=app_id, actor=actor, action=action, target=target)
        return entry


async def list_entries(log_: AuditLog, app_id: str, page: int, per_page: int) -> PageOf[AuditEntry]:
    entries, total = await log_.list_for_app(app_id, (page - 1) * per_page, per_page)
    return PageOf(entries, total, Page(page, per_page))
