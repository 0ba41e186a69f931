"""In-memory stand-ins for the ports of CSV imports, with the Mongo adapters' behaviour
(``tests/test_gateway_campaign_imports_repository.py`` runs the same cases on both)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..campaigns.imports import CsvImport, ImportStorage
from ..campaigns.uploads import Upload


class MemoryUploadKeys:
    def __init__(self) -> None:
        self.docs: dict[str, Upload] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def insert(self, upload: Upload) -> None:
        if upload.key in self.docs:
            raise KeyError(f"duplicate upload key {upload.key}")
        self.docs[upload.key] = upload

    async def get(self, key: str) -> Upload | None:
        return self.docs.get(key)

    async def claim(self, key: str) -> bool:
        upload = self.docs.get(key)
        if upload is None or upload.used:
            return False
        self.docs[key] = replace(upload, used=True)
        return True

    async def release(self, key: str) -> None:
        upload = self.docs.get(key)
        if upload is not None and upload.size is None:
            self.docs[key] = replace(upload, used=False)

    async def stored(self, key: str, size: int) -> None:
        upload = self.docs.get(key)
        if upload is not None:
            self.docs[key] = replace(upload, size=size)

    async def expired(self, before: int) -> list[str]:
        return [key for key, upload in self.docs.items() if upload.expires_at < before]

    async def delete(self, key: str) -> None:
        self.docs.pop(key, None)


class MemoryUploadChunks:
    def __init__(self) -> None:
        self.docs: dict[tuple[str, int], bytes] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def put(self, key: str, n: int, data: bytes) -> None:
        self.docs[(key, n)] = bytes(data)

    async def get(self, key: str, n: int) -> bytes | None:
        return self.docs.get((key, n))

    async def delete(self, key: str) -> None:
        for found in [k for k in self.docs if k[0] == key]:
            del self.docs[found]

    def files(self) -> set[str]:
        """The keys with a file (part) stored."""
        return {key for key, _ in self.docs}


class MemoryImports:
    def __init__(self) -> None:
        self.docs: dict[tuple[str, str, str], CsvImport] = {}
        self.latest_of: dict[tuple[str, str], str] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def insert(self, job: CsvImport) -> None:
        key = (job.app_id, job.campaign_id, job.import_id)
        if key in self.docs:
            raise KeyError(f"duplicate import {job.import_id}")
        self.docs[key] = job
        self.latest_of[(job.app_id, job.campaign_id)] = job.import_id

    async def save(self, job: CsvImport) -> None:
        key = (job.app_id, job.campaign_id, job.import_id)
        if key in self.docs:
            self.docs[key] = job

    async def latest(self, app_id: str, campaign_id: str) -> CsvImport | None:
        import_id = self.latest_of.get((app_id, campaign_id))
        return None if import_id is None else self.docs.get((app_id, campaign_id, import_id))

    async def processing(self) -> list[CsvImport]:
        return [job for job in self.docs.values() if job.status == "processing"]


@dataclass
class MemoryImportStorage:
    """The three fakes, and the ``ImportStorage`` the gateway is given of them."""

    keys: MemoryUploadKeys = field(default_factory=MemoryUploadKeys)
    chunks: MemoryUploadChunks = field(default_factory=MemoryUploadChunks)
    imports: MemoryImports = field(default_factory=MemoryImports)

    def storage(self) -> ImportStorage:
        return ImportStorage(self.keys, self.chunks, self.imports)
