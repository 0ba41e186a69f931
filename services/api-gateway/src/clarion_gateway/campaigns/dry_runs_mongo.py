"""The collection of dry runs, ``campaign_dry_runs`` (FerretDB reads only ``_id`` and
top-level equalities efficiently, so every read is one of those but the sweep's):

- one document per dry run (``_id`` ``{app}:{campaign}:{dry run}``, ``kind``
  "dry_run"), its progress saved over it while it runs;
- its rejected rows, ``REJECTED_PER_DOC`` to a document (``_id`` ``{dry run's _id}:{n}``,
  ``kind`` "rejected", each row a short document ``{r: row, u: uid, c: code, m: message}``:
  FerretDB 1.x stores no nested arrays), read one by one by ``_id``.

Every document carries ``expires_at`` (Unix seconds: the sweep deletes by it) and
``expire_at`` (the same as a date, for MongoDB's TTL monitor; FerretDB 1.24 refuses
TTL indexes: "Index option expireAfterSeconds is not implemented yet").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pymongo.asynchronous.database import AsyncDatabase

from clarion_shared.mongo import Document, create_index_best_effort

from .domain import RecipientRejected
from .dry_runs import DryRun, DryRunStage, DryRunStatus, DuplicateRow
from .imports import ImportFailure

_STATUSES: tuple[DryRunStatus, ...] = ("running", "completed", "failed")
_STAGES: tuple[DryRunStage, ...] = ("reading", "checking_users", "done")


def _id(app_id: str, campaign_id: str, dry_run_id: str) -> str:
    return f"{app_id}:{campaign_id}:{dry_run_id}"


def _expiry(run: DryRun) -> Document:
    return {"expires_at": run.expires_at, "expire_at": datetime.fromtimestamp(run.expires_at, UTC)}


def _doc(run: DryRun) -> Document:
    return {
        "_id": _id(run.app_id, run.campaign_id, run.dry_run_id),
        "kind": "dry_run",
        "app_id": run.app_id,
        "campaign_id": run.campaign_id,
        "dry_run_id": run.dry_run_id,
        "upload_key": run.upload_key,
        "size": run.size,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        **_expiry(run),
        "status": run.status,
        "stage": run.stage,
        "attempts": run.attempts,
        "processed_rows": run.processed_rows,
        "processed_bytes": run.processed_bytes,
        "audience_before": run.audience_before,
        "columns": list(run.columns),
        "rows": run.rows,
        "accepted": run.accepted,
        "duplicates": run.duplicates,
        "duplicate_rows": [{"r": d.row, "u": d.uid, "f": d.first_row} for d in run.duplicate_rows],
        "rejected_count": run.rejected_count,
        "rejected_docs": run.rejected_docs,
        "error": {"code": run.error.code, "message": run.error.message} if run.error else None,
    }


T = TypeVar("T")


def _one_of(values: tuple[T, ...], value: Any) -> T:
    for known in values:
        if known == value:
            return known
    raise ValueError(f"unknown value {value!r}")


def _run(doc: Document) -> DryRun:
    error = doc.get("error")
    return DryRun(
        app_id=doc["app_id"],
        campaign_id=doc["campaign_id"],
        dry_run_id=doc["dry_run_id"],
        upload_key=doc["upload_key"],
        size=int(doc["size"]),
        created_at=int(doc["created_at"]),
        updated_at=int(doc["updated_at"]),
        expires_at=int(doc["expires_at"]),
        status=_one_of(_STATUSES, doc["status"]),
        stage=_one_of(_STAGES, doc["stage"]),
        attempts=int(doc["attempts"]),
        processed_rows=int(doc["processed_rows"]),
        processed_bytes=int(doc["processed_bytes"]),
        audience_before=int(doc["audience_before"]),
        columns=tuple(doc["columns"]),
        rows=int(doc["rows"]),
        accepted=int(doc["accepted"]),
        duplicates=int(doc["duplicates"]),
        duplicate_rows=tuple(
            DuplicateRow(int(d["r"]), d["u"], None if d["f"] is None else int(d["f"]))
            for d in doc["duplicate_rows"]
        ),
        rejected_count=int(doc["rejected_count"]),
        rejected_docs=int(doc["rejected_docs"]),
        error=ImportFailure(error["code"], error["message"]) if error else None,
    )


class MongoDryRuns:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db["campaign_dry_runs"]

    async def start(self) -> None:
        await create_index_best_effort(self._col, "status")
        await create_index_best_effort(self._col, "expire_at", expireAfterSeconds=0)

    async def stop(self) -> None:
        return None

    async def insert(self, run: DryRun) -> None:
        await self._col.insert_one(_doc(run))

    async def save(self, run: DryRun) -> None:
        doc = _doc(run)
        await self._col.replace_one({"_id": doc["_id"]}, doc)

    async def save_progress(self, run: DryRun) -> None:
        doc = _doc(run)
        await self._col.replace_one(
            {"_id": doc["_id"], "status": "running", "attempts": run.attempts}, doc
        )

    async def claim(self, seen: DryRun, again: DryRun) -> bool:
        doc = _doc(again)
        found = {"_id": doc["_id"], "status": seen.status, "attempts": seen.attempts}
        result = await self._col.replace_one(found, doc)
        return result.modified_count == 1

    async def get(self, app_id: str, campaign_id: str, dry_run_id: str) -> DryRun | None:
        doc = await self._col.find_one({"_id": _id(app_id, campaign_id, dry_run_id)})
        return _run(doc) if doc is not None else None

    async def running(self) -> list[DryRun]:
        return [_run(doc) async for doc in self._col.find({"status": "running"})]

    async def put_rejected(self, run: DryRun, n: int, rows: Sequence[RecipientRejected]) -> None:
        head = _id(run.app_id, run.campaign_id, run.dry_run_id)
        doc = {
            "_id": f"{head}:{n}",
            "kind": "rejected",
            **_expiry(run),
            "rows": [{"r": r.row, "u": r.uid, "c": r.code, "m": r.message} for r in rows],
        }
        await self._col.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def rejected(self, run: DryRun, n: int) -> list[RecipientRejected] | None:
        head = _id(run.app_id, run.campaign_id, run.dry_run_id)
        doc = await self._col.find_one({"_id": f"{head}:{n}"})
        if doc is None:
            return None
        return [RecipientRejected(r["u"], r["c"], r["m"], r["r"]) for r in doc["rows"]]

    async def delete_expired(self, now: int) -> int:
        result = await self._col.delete_many({"expires_at": {"$lte": now}})
        return result.deleted_count
