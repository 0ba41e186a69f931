"""The sends listing's entries in memory (the port of ``sends.service``); the in-memory
notifications and batches write it as their Mongo adapters write ``sends``."""

from __future__ import annotations

from collections.abc import Sequence

from ..batches.models import FinalStatus
from ..sends.domain import send_key
from ..sends.models import SendEntry, SendQuery


def matches(entry: SendEntry, app_id: str, query: SendQuery) -> bool:
    return (
        entry.app_id == app_id
        and query.type in (None, entry.type)
        and query.status in (None, entry.status)
        and query.template_id in (None, entry.template_id)
        and (query.since is None or entry.created_at >= query.since)
        and (query.until is None or entry.created_at <= query.until)
    )


class InMemorySends:
    def __init__(self) -> None:
        self.entries: dict[str, SendEntry] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def add_absent(self, entries: Sequence[SendEntry]) -> None:
        for entry in entries:
            self.entries.setdefault(entry.id, entry)

    async def put(self, entries: Sequence[SendEntry]) -> None:
        for entry in entries:
            self.entries[entry.id] = entry

    async def dispatching(
        self, app_id: str, send_id: str, template_id: str | None, template_version: int | None
    ) -> None:
        key = send_key(app_id, send_id)
        entry = self.entries.get(key)
        if entry is not None and entry.status == "queued":
            self.entries[key] = entry.model_copy(
                update={
                    "status": "dispatching",
                    "template_id": template_id,
                    "template_version": template_version,
                }
            )

    async def finished(self, app_id: str, send_id: str, status: FinalStatus) -> None:
        key = send_key(app_id, send_id)
        if key in self.entries:
            self.entries[key] = self.entries[key].model_copy(update={"status": status})

    async def get(self, app_id: str, send_id: str) -> SendEntry | None:
        entry = self.entries.get(send_key(app_id, send_id))
        return entry if entry is not None and entry.app_id == app_id else None

    async def page(
        self, app_id: str, query: SendQuery, skip: int, limit: int
    ) -> tuple[list[SendEntry], int]:
        found = [entry for entry in self.entries.values() if matches(entry, app_id, query)]
        found.sort(key=lambda entry: (entry.created_at, entry.send_id), reverse=True)
        return found[skip : skip + limit], len(found)
