"""The ``deliveries`` collection: one document per delivery job's outcome (``_id``: the
job id) and one per claim (``_id``: the job id, ``#claim-`` and the attempt), all
insert-only.

Reads are one top-level equality (a chunk's ``chunk_key``: app, send and chunk in one
value, indexed) or by ``_id``: what the embedded FerretDB pushes down to its storage
and finds by index. There an equality is found by the GIN twin of an index's leading
field only (README: Decisions worth knowing), so a read by ``send_id`` and ``chunk``
went through every document of the send (20,000 for 10,000 emails) to return a chunk's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.mongo import Document

from ..mongo import insert_absent, insert_new, send_chunk_key
from .models import DeliveryOutcome

COLLECTION = "deliveries"
CLAIM = "#claim-"
_READS_AT_ONCE = 16


def to_document(outcome: DeliveryOutcome) -> Document:
    doc = outcome.model_dump(exclude={"error"}, exclude_none=True)
    doc["chunk_key"] = send_chunk_key(outcome.app_id, outcome.send_id, outcome.chunk)
    claim = outcome.status == "committing"
    doc["_id"] = f"{outcome.job_id}{CLAIM}{outcome.attempts}" if claim else outcome.job_id
    if outcome.error is not None:
        doc["code"] = outcome.error.code
        doc["message"] = outcome.error.message
    return doc


def from_document(doc: Document) -> DeliveryOutcome:
    error = (
        ErrorInfo(code=str(doc["code"]), message=str(doc.get("message", "")))
        if doc.get("code")
        else None
    )
    return DeliveryOutcome.model_validate({**doc, "error": error})


def _merge(found: dict[str, DeliveryOutcome], outcome: DeliveryOutcome) -> None:
    """A job's outcome wins over its claims, and a later attempt's claim over an
    earlier one's."""
    held = found.get(outcome.job_id)
    if held is None or (
        held.status == "committing"
        and (outcome.status != "committing" or outcome.attempts > held.attempts)
    ):
        found[outcome.job_id] = outcome


class MongoDeliveries:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db[COLLECTION]
        self._gate = asyncio.Semaphore(_READS_AT_ONCE)

    async def start(self) -> None:
        await self._col.create_index([("chunk_key", ASCENDING)], name="chunk_key")

    async def stop(self) -> None:
        return None

    async def of_chunks(self, keys: Sequence[tuple[str, str, int]]) -> dict[str, DeliveryOutcome]:
        async def one(app_id: str, send_id: str, chunk: int) -> list[Document]:
            where = {"chunk_key": send_chunk_key(app_id, send_id, chunk)}
            async with self._gate:
                return [doc async for doc in self._col.find(where)]

        found: dict[str, DeliveryOutcome] = {}
        for docs in await asyncio.gather(*(one(*key) for key in dict.fromkeys(keys))):
            for doc in docs:
                _merge(found, from_document(doc))
        return found

    async def of_jobs(self, app_id: str, job_ids: Sequence[str]) -> dict[str, DeliveryOutcome]:
        async def one(doc_id: str) -> Document | None:
            async with self._gate:
                return await self._col.find_one({"_id": doc_id})

        found: dict[str, DeliveryOutcome] = {}
        for doc in await asyncio.gather(*(one(job_id) for job_id in dict.fromkeys(job_ids))):
            if doc is not None and doc.get("app_id") == app_id:
                _merge(found, from_document(doc))
        return found

    async def claim(self, outcomes: Sequence[DeliveryOutcome]) -> set[str]:
        docs = [to_document(o.model_copy(update={"status": "committing"})) for o in outcomes]
        held = await insert_new(self._col, docs)
        return {
            outcome.job_id
            for outcome, doc in zip(outcomes, docs, strict=True)
            if doc["_id"] in held
        }

    async def record(self, outcomes: Sequence[DeliveryOutcome]) -> None:
        await insert_absent(self._col, [to_document(outcome) for outcome in outcomes])
