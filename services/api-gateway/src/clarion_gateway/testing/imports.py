"""In-memory stand-ins for the ports of CSV imports, with the Mongo adapters' behaviour
(``tests/test_gateway_campaign_imports_repository.py`` runs the same cases on both)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..campaigns.domain import RecipientRejected
from ..campaigns.dry_runs import DryRun
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


class MemoryDryRuns:
    def __init__(self) -> None:
        self.docs: dict[tuple[str, str, str], DryRun] = {}
        self.rejected_docs: dict[tuple[str, int], tuple[int, list[RecipientRejected]]] = {}
        self.progress_saves = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    @staticmethod
    def _key(run: DryRun) -> tuple[str, str, str]:
        return (run.app_id, run.campaign_id, run.dry_run_id)

    async def insert(self, run: DryRun) -> None:
        if self._key(run) in self.docs:
            raise KeyError(f"duplicate dry run {run.dry_run_id}")
        self.docs[self._key(run)] = run

    async def save(self, run: DryRun) -> None:
        if self._key(run) in self.docs:
            self.docs[self._key(run)] = run

    async def save_progress(self, run: DryRun) -> None:
        stored = self.docs.get(self._key(run))
        if stored is not None and stored.status == "running" and stored.attempts == run.attempts:
            self.docs[self._key(run)] = run
            self.progress_saves += 1

    async def claim(self, seen: DryRun, again: DryRun) -> bool:
        stored = self.docs.get(self._key(seen))
        if stored is None or (stored.status, stored.attempts) != (seen.status, seen.attempts):
            return False
        self.docs[self._key(seen)] = again
        return True

    async def get(self, app_id: str, campaign_id: str, dry_run_id: str) -> DryRun | None:
        return self.docs.get((app_id, campaign_id, dry_run_id))

    async def running(self) -> list[DryRun]:
        return [run for run in self.docs.values() if run.status == "running"]

    async def put_rejected(self, run: DryRun, n: int, rows: Sequence[RecipientRejected]) -> None:
        self.rejected_docs[(run.dry_run_id, n)] = (run.expires_at, list(rows))

    async def rejected(self, run: DryRun, n: int) -> list[RecipientRejected] | None:
        found = self.rejected_docs.get((run.dry_run_id, n))
        return None if found is None else list(found[1])

    async def delete_expired(self, now: int) -> int:
        runs = [key for key, run in self.docs.items() if run.expires_at <= now]
        rows = [key for key, (expires_at, _) in self.rejected_docs.items() if expires_at <= now]
        for key in runs:
            del self.docs[key]
        for n in rows:
            del self.rejected_docs[n]
        return len(runs) + len(rows)


@dataclass
class MemoryImportStorage:
    """The four fakes, and the ``ImportStorage`` the gateway is given of them."""

    keys: MemoryUploadKeys = field(default_factory=MemoryUploadKeys)
    chunks: MemoryUploadChunks = field(default_factory=MemoryUploadChunks)
    imports: MemoryImports = field(default_factory=MemoryImports)
    dry_runs: MemoryDryRuns = field(default_factory=MemoryDryRuns)

    def storage(self) -> ImportStorage:
        return ImportStorage(self.keys, self.chunks, self.imports, self.dry_runs)
