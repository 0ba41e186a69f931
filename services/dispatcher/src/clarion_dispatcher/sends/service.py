"""Use cases of the sends listing, and the port of its entries.

The listing is a view: a page of entries (``SendIndex``), each batch's status and
counts read from the batch as ``GET .../batches/{id}`` reads them, each receiver's
state from its batch chunk (or, for a realtime send, its records) joined with its
records' per-channel states. The CSV export reads the same, one chunk at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from clarion_shared.lifecycle import Resource

from ..batches import domain as batch_domain
from ..batches.models import Batch, BatchChunk, FinalStatus, ReceiverOutcome, ReceiverStatus
from ..batches.service import BatchRepository
from ..notifications.service import NotificationRepository
from . import domain
from .domain import SendNotFound
from .models import ReceiverQuery, SendEntry, SendPublic, SendQuery, SendReceiverPublic


class SendIndex(Resource, Protocol):
    """The listing's entries (``start`` creates the index). Written by the notification
    and batch repositories as they write what the entries describe."""

    async def add_absent(self, entries: Sequence[SendEntry]) -> None:
        """Insert the entries that do not exist yet (by id); leave the others."""
        ...

    async def put(self, entries: Sequence[SendEntry]) -> None:
        """Store the entries, replacing those of the same ids."""
        ...

    async def dispatching(
        self, app_id: str, send_id: str, template_id: str | None, template_version: int | None
    ) -> None:
        """A ``queued`` batch's entry becomes ``dispatching``, with its template (no
        change to an entry in another status)."""
        ...

    async def finished(self, app_id: str, send_id: str, status: FinalStatus) -> None: ...

    async def get(self, app_id: str, send_id: str) -> SendEntry | None: ...

    async def page(
        self, app_id: str, query: SendQuery, skip: int, limit: int
    ) -> tuple[list[SendEntry], int]:
        """The entries matching ``query``, newest first (then by send id, descending),
        from ``skip``; and how many match in all."""
        ...


async def list_sends(
    app_id: str,
    query: SendQuery,
    page: int,
    per_page: int,
    *,
    sends: SendIndex,
    batches: BatchRepository,
) -> tuple[list[SendPublic], int]:
    entries, total = await sends.page(app_id, query, (page - 1) * per_page, per_page)
    return list(await asyncio.gather(*(_shown(entry, batches) for entry in entries))), total


async def refresh_realtime(
    keys: Sequence[tuple[str, str]], *, notifications: NotificationRepository, sends: SendIndex
) -> None:
    """The entries of realtime sends (app id, send id) made again from their records,
    as their deliveries ended (``notifications`` merges the outcomes): a realtime send
    with a queued email becomes final when its worker has written the outcome."""
    found = await asyncio.gather(*(notifications.for_send(app, send) for app, send in keys))
    await sends.put(
        [
            domain.realtime_entry(app, send, records)
            for (app, send), records in zip(keys, found, strict=True)
            if records
        ]
    )


async def _shown(entry: SendEntry, batches: BatchRepository) -> SendPublic:
    if entry.type == "realtime":
        return domain.shown(entry, None)
    batch = await batches.get(entry.app_id, entry.send_id)
    if batch is None:  # an entry is written before its batch: shown as registered
        return domain.shown(entry, None)
    chunks = await batches.chunks(batch, receivers=False)
    return domain.shown(entry, batch_domain.public_batch(batch, chunks))


async def _entry(app_id: str, send_id: str, sends: SendIndex) -> SendEntry:
    entry = await sends.get(app_id, send_id)
    if entry is None:
        raise SendNotFound()
    return entry


async def list_receivers(
    app_id: str,
    send_id: str,
    query: ReceiverQuery,
    *,
    sends: SendIndex,
    batches: BatchRepository,
    notifications: NotificationRepository,
) -> tuple[list[SendReceiverPublic], int]:
    """One page of the send's receivers in send order (those matching the filters), and
    how many match in all. Of a batch, only the chunks holding the page are read."""
    entry = await _entry(app_id, send_id, sends)
    start = (query.page - 1) * query.per_page
    batch = None if entry.type == "realtime" else await batches.get(app_id, send_id)
    if batch is None or query.uid is not None:
        found = await _all_matching(entry, batch, query, batches, notifications)
        return found[start : start + query.per_page], len(found)
    span = batch_domain.page_span(
        await batches.chunks(batch, receivers=False), query.status, query.page, query.per_page
    )
    found = await _chunk_receivers(batch, span.chunks, query.status, batches, notifications)
    return found[span.skip : span.skip + query.per_page], span.total


async def _all_matching(
    entry: SendEntry,
    batch: Batch | None,
    query: ReceiverQuery,
    batches: BatchRepository,
    notifications: NotificationRepository,
) -> list[SendReceiverPublic]:
    """A realtime send's receivers (ten at most), or a batch's one ``query.uid``."""
    if batch is None:
        records = await notifications.for_send(entry.app_id, entry.send_id)
        return domain.realtime_receivers(records, query.status, query.uid)
    outcome = _find(await batches.chunks(batch), query.uid or "")
    if outcome is None:
        return []
    records = await notifications.for_receiver(entry.app_id, entry.send_id, outcome.uid)
    return domain.joined([outcome], records, query.status)


def _find(chunks: Sequence[BatchChunk], uid: str) -> ReceiverOutcome | None:
    return next((r for chunk in chunks for r in chunk.receivers if r.uid == uid), None)


async def _chunk_receivers(
    batch: Batch,
    numbers: Sequence[int],
    status: ReceiverStatus | None,
    batches: BatchRepository,
    notifications: NotificationRepository,
) -> list[SendReceiverPublic]:
    """The receivers of chunks ``numbers`` (whole, in send order), with their records."""
    if not numbers:
        return []
    chunks, records = await asyncio.gather(
        batches.chunks_numbered(batch, numbers),
        asyncio.gather(
            *(notifications.for_chunk(batch.app_id, batch.batch_id, n) for n in numbers)
        ),
    )
    outcomes = [receiver for chunk in chunks for receiver in chunk.receivers]
    return domain.joined(outcomes, [r for mine in records for r in mine], status)


async def export_receivers(
    app_id: str,
    send_id: str,
    query: ReceiverQuery,
    *,
    sends: SendIndex,
    batches: BatchRepository,
    notifications: NotificationRepository,
) -> AsyncIterator[list[SendReceiverPublic]]:
    """The send's receivers matching the filters (paging ignored), a chunk at a time.

    Raises ``SendNotFound`` here, before anything is read, so that a caller answers 404
    before it starts a response; the receivers are read as the iterator is."""
    entry = await _entry(app_id, send_id, sends)
    batch = None if entry.type == "realtime" else await batches.get(app_id, send_id)
    return _export(entry, batch, query, batches, notifications)


async def _export(
    entry: SendEntry,
    batch: Batch | None,
    query: ReceiverQuery,
    batches: BatchRepository,
    notifications: NotificationRepository,
) -> AsyncIterator[list[SendReceiverPublic]]:
    if batch is None or query.uid is not None:
        yield await _all_matching(entry, batch, query, batches, notifications)
        return
    for chunk in await batches.chunks(batch, receivers=False):
        if chunk.count(query.status):
            yield await _chunk_receivers(batch, [chunk.chunk], query.status, batches, notifications)
