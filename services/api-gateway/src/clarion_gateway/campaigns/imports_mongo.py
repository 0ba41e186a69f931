"""The collections of CSV imports (FerretDB reads only ``_id`` and top-level equalities
efficiently, so every lookup is one of those):

- ``campaign_upload_keys``: one document per issued upload key (``_id`` the key), with
  its app, campaign, PUT deadline, ``used`` flag and, once stored, the file's size, or
  ``object_store`` true when the file is PUT to the object store (``objects``);
- ``campaign_uploads``: the uploaded files in chunks of 256 KiB, ``_id``
  ``{key}:{n}``, read one by one by ``_id`` and removed by the equality on
  ``upload_key``;
- ``campaign_imports``: one document per import (``_id`` ``{app}:{campaign}:{import}``,
  ``kind`` "import") and one per campaign that had one (``_id`` ``{app}:{campaign}``,
  ``kind`` "latest") naming its latest import.
"""

from __future__ import annotations

from typing import Any

from bson import Binary
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from clarion_shared.mongo import Document, create_index_best_effort

from .domain import RecipientRejected
from .dry_runs_mongo import MongoDryRuns
from .imports import CsvImport, ImportFailure, ImportStatus, ImportStorage
from .objects import ObjectStore
from .uploads import Upload

_STATUSES: tuple[ImportStatus, ...] = ("processing", "completed", "failed")


class MongoUploadKeys:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db["campaign_upload_keys"]

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def insert(self, upload: Upload) -> None:
        await self._col.insert_one(
            {
                "_id": upload.key,
                "app_id": upload.app_id,
                "campaign_id": upload.campaign_id,
                "created_at": upload.created_at,
                "expires_at": upload.expires_at,
                "used": upload.used,
                "size": upload.size,
                "object_store": upload.in_object_store,
            }
        )

    async def get(self, key: str) -> Upload | None:
        doc = await self._col.find_one({"_id": key})
        if doc is None:
            return None
        size = doc.get("size")
        return Upload(
            key=doc["_id"],
            app_id=doc["app_id"],
            campaign_id=doc["campaign_id"],
            created_at=int(doc["created_at"]),
            expires_at=int(doc["expires_at"]),
            used=bool(doc.get("used")),
            size=int(size) if size is not None else None,
            in_object_store=bool(doc.get("object_store")),
        )

    async def claim(self, key: str) -> bool:
        result = await self._col.update_one({"_id": key, "used": False}, {"$set": {"used": True}})
        return result.modified_count == 1

    async def release(self, key: str) -> None:
        await self._col.update_one({"_id": key, "size": None}, {"$set": {"used": False}})

    async def stored(self, key: str, size: int) -> None:
        await self._col.update_one({"_id": key}, {"$set": {"size": size}})

    async def expired(self, before: int) -> list[str]:
        cursor = self._col.find({"expires_at": {"$lt": before}}, {"_id": 1})
        return [doc["_id"] async for doc in cursor]

    async def delete(self, key: str) -> None:
        await self._col.delete_one({"_id": key})


class MongoUploadChunks:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db["campaign_uploads"]

    async def start(self) -> None:
        await create_index_best_effort(self._col, "upload_key")

    async def stop(self) -> None:
        return None

    async def put(self, key: str, n: int, data: bytes) -> None:
        doc = {"_id": f"{key}:{n}", "upload_key": key, "n": n, "data": Binary(data)}
        try:
            await self._col.insert_one(doc)
        except DuplicateKeyError:  # written again after a retried write: the same bytes
            await self._col.replace_one({"_id": doc["_id"]}, doc)

    async def get(self, key: str, n: int) -> bytes | None:
        doc = await self._col.find_one({"_id": f"{key}:{n}"})
        return bytes(doc["data"]) if doc is not None else None

    async def delete(self, key: str) -> None:
        await self._col.delete_many({"upload_key": key})


def _import_id(app_id: str, campaign_id: str, import_id: str) -> str:
    return f"{app_id}:{campaign_id}:{import_id}"


def _import_doc(job: CsvImport) -> Document:
    return {
        "_id": _import_id(job.app_id, job.campaign_id, job.import_id),
        "kind": "import",
        "app_id": job.app_id,
        "campaign_id": job.campaign_id,
        "import_id": job.import_id,
        "upload_key": job.upload_key,
        "size": job.size,
        "holder": job.holder,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "updated_at": job.updated_at,
        "status": job.status,
        "attempts": job.attempts,
        "base": job.base,
        "rows": job.rows,
        "imported": job.imported,
        "duplicates": job.duplicates,
        "rejected": [
            {"row": r.row, "uid": r.uid, "code": r.code, "message": r.message} for r in job.rejected
        ],
        "rejected_count": job.rejected_count,
        "error": {"code": job.error.code, "message": job.error.message} if job.error else None,
    }


def _status(value: Any) -> ImportStatus:
    for status in _STATUSES:
        if status == value:
            return status
    raise ValueError(f"unknown import status {value!r}")


def _import(doc: Document) -> CsvImport:
    error = doc.get("error")
    base = doc.get("base")
    return CsvImport(
        app_id=doc["app_id"],
        campaign_id=doc["campaign_id"],
        import_id=doc["import_id"],
        upload_key=doc["upload_key"],
        size=int(doc["size"]),
        holder=doc["holder"],
        created_at=int(doc["created_at"]),
        started_at=int(doc["started_at"]),
        updated_at=int(doc["updated_at"]),
        status=_status(doc["status"]),
        attempts=int(doc.get("attempts", 1)),
        base=int(base) if base is not None else None,
        rows=int(doc.get("rows", 0)),
        imported=int(doc.get("imported", 0)),
        duplicates=int(doc.get("duplicates", 0)),
        rejected=tuple(
            RecipientRejected(r.get("uid"), r["code"], r["message"], r.get("row"))
            for r in doc.get("rejected") or []
        ),
        rejected_count=int(doc.get("rejected_count", 0)),
        error=ImportFailure(error["code"], error["message"]) if error else None,
    )


class MongoImports:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db["campaign_imports"]

    async def start(self) -> None:
        await create_index_best_effort(self._col, "status")

    async def stop(self) -> None:
        return None

    async def insert(self, job: CsvImport) -> None:
        await self._col.insert_one(_import_doc(job))
        pointer = f"{job.app_id}:{job.campaign_id}"
        await self._col.replace_one(
            {"_id": pointer}, {"kind": "latest", "import_id": job.import_id}, upsert=True
        )

    async def save(self, job: CsvImport) -> None:
        doc = _import_doc(job)
        await self._col.replace_one({"_id": doc["_id"]}, doc)

    async def latest(self, app_id: str, campaign_id: str) -> CsvImport | None:
        pointer = await self._col.find_one({"_id": f"{app_id}:{campaign_id}"})
        if pointer is None:
            return None
        doc = await self._col.find_one(
            {"_id": _import_id(app_id, campaign_id, pointer["import_id"])}
        )
        return _import(doc) if doc is not None else None

    async def processing(self) -> list[CsvImport]:
        return [_import(doc) async for doc in self._col.find({"status": "processing"})]


def mongo_import_storage(
    db: AsyncDatabase[Document], objects: ObjectStore | None = None
) -> ImportStorage:
    """The collections in ``db``; the files PUT to upload URLs in ``objects`` if given."""
    keys, chunks, imports = MongoUploadKeys(db), MongoUploadChunks(db), MongoImports(db)
    return ImportStorage(keys, chunks, imports, MongoDryRuns(db), objects)
