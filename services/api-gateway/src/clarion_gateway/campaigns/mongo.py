"""The campaigns' collections: ``campaigns`` (one document per ``{app_id}:{campaign_id}``),
``campaign_recipients`` (one per recipient, ``_id`` derived from campaign and uid, found
by the top-level equality ``campaign_key``), ``campaign_locks`` (one per campaign
whose audience is being changed; taken by an insert, so two holders never both win).
The tracking read model's are in ``tracking_mongo``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from clarion_shared.ids import derive_id
from clarion_shared.mongo import Document, create_index_best_effort

from ..mongo import dump_json, load_json
from .domain import (
    CAMPAIGN_STATUSES,
    Campaign,
    CampaignCounts,
    CampaignStatus,
    Recipient,
)

# Documents written per bulk request.
_WRITE_BATCH = 1000

# Recipients per page of an audience, and about how many bytes of variables.
_PAGE = 1000
_PAGE_BYTES = 4 * 1024 * 1024
DUPLICATE_KEY = 11000


async def insert_new(col: AsyncCollection[Document], docs: Sequence[Document]) -> None:
    """Insert ``docs``, leaving those whose ``_id`` is there already as they are."""
    for start in range(0, len(docs), _WRITE_BATCH):
        try:
            await col.insert_many(docs[start : start + _WRITE_BATCH], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != DUPLICATE_KEY for error in errors) or not errors:
                raise


def campaign_key(app_id: str, campaign_id: str) -> str:
    return f"{app_id}:{campaign_id}"


def _status(value: Any) -> CampaignStatus:
    for status in CAMPAIGN_STATUSES:
        if status == value:
            return status
    raise ValueError(f"unknown campaign status {value!r}")


def _doc(c: Campaign, revision: int) -> Document:
    return {
        "_id": campaign_key(c.app_id, c.campaign_id),
        "app_id": c.app_id,
        "campaign_id": c.campaign_id,
        "name": c.name,
        "template_id": c.template_id,
        "template_version": c.template_version,
        "status": c.status,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "variables": dump_json(c.variables),
        "tag": c.tag,
        "config": dump_json(c.config),
        "scheduled_at": c.scheduled_at,
        "started_at": c.started_at,
        "dispatched_at": c.dispatched_at,
        "completed_at": c.completed_at,
        "total_targets": c.total_targets,
        "counts": {
            "sent": c.counts.sent,
            "delivered": c.counts.delivered,
            "failed": c.counts.failed,
            "read": c.counts.read,
        },
        "chunk_counts": {str(k): [v[0], v[1]] for k, v in c.chunk_counts.items()},
        "revision": revision,
    }


def _optional_int(value: Any) -> int | None:
    return int(value) if value is not None else None


def _campaign(doc: Document) -> Campaign:
    counts = doc.get("counts") or {}
    return Campaign(
        app_id=doc["app_id"],
        campaign_id=doc["campaign_id"],
        name=doc["name"],
        template_id=doc["template_id"],
        template_version=int(doc["template_version"]),
        status=_status(doc["status"]),
        created_at=int(doc["created_at"]),
        updated_at=int(doc["updated_at"]),
        variables=load_json(doc.get("variables")),
        tag=doc.get("tag"),
        config=load_json(doc.get("config")),
        scheduled_at=_optional_int(doc.get("scheduled_at")),
        started_at=_optional_int(doc.get("started_at")),
        dispatched_at=_optional_int(doc.get("dispatched_at")),
        completed_at=_optional_int(doc.get("completed_at")),
        total_targets=int(doc.get("total_targets", 0)),
        counts=CampaignCounts(
            sent=int(counts.get("sent", 0)),
            delivered=int(counts.get("delivered", 0)),
            failed=int(counts.get("failed", 0)),
            read=int(counts.get("read", 0)),
        ),
        chunk_counts={
            int(k): (int(v[0]), int(v[1])) for k, v in (doc.get("chunk_counts") or {}).items()
        },
        revision=int(doc.get("revision", 0)),
    )


class MongoCampaigns:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db["campaigns"]

    async def start(self) -> None:
        await create_index_best_effort(self._col, "app_id")
        await create_index_best_effort(self._col, "status")

    async def stop(self) -> None:
        return None

    async def insert(self, campaign: Campaign) -> bool:
        try:
            await self._col.insert_one(_doc(campaign, campaign.revision))
        except DuplicateKeyError:
            return False
        return True

    async def get(self, app_id: str, campaign_id: str) -> Campaign | None:
        doc = await self._col.find_one({"_id": campaign_key(app_id, campaign_id)})
        return _campaign(doc) if doc else None

    async def list_for_app(self, app_id: str) -> list[Campaign]:
        return [_campaign(doc) async for doc in self._col.find({"app_id": app_id})]

    async def replace(self, campaign: Campaign) -> bool:
        result = await self._col.replace_one(
            {
                "_id": campaign_key(campaign.app_id, campaign.campaign_id),
                "revision": campaign.revision,
            },
            _doc(campaign, campaign.revision + 1),
        )
        return result.matched_count == 1

    async def delete(self, campaign: Campaign) -> bool:
        result = await self._col.delete_one(
            {
                "_id": campaign_key(campaign.app_id, campaign.campaign_id),
                "revision": campaign.revision,
            }
        )
        return result.deleted_count == 1

    async def due(self, now: int, stalled_before: int) -> list[Campaign]:
        # Two top-level equalities (FerretDB pushes those down; scheduled and sending
        # campaigns are few), the times compared here.
        scheduled = [_campaign(d) async for d in self._col.find({"status": "scheduled"})]
        sending = [_campaign(d) async for d in self._col.find({"status": "sending"})]
        return [c for c in scheduled if c.scheduled_at is not None and c.scheduled_at <= now] + [
            c for c in sending if c.dispatched_at is None and (c.started_at or 0) < stalled_before
        ]


def _entry(r: Recipient) -> dict[str, Any]:
    return {
        "uid": r.uid,
        "seq": r.seq,
        "variables": r.variables,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    }


def _recipients_of(doc: Document) -> list[Recipient]:
    """A page's recipients (one JSON string: FerretDB reads one string much faster than
    a thousand subdocuments); a document of one recipient (written before pages) is
    read as a page of one."""
    page = doc.get("recipients")
    entries: list[dict[str, Any]] = json.loads(page) if isinstance(page, str) else [doc]
    return [
        Recipient(
            app_id=doc["app_id"],
            campaign_id=doc["campaign_id"],
            uid=e["uid"],
            seq=int(e["seq"]),
            created_at=int(e["created_at"]),
            updated_at=int(e["updated_at"]),
            variables=load_json(e.get("variables")),
        )
        for e in entries
    ]


def _pages(recipients: Sequence[Recipient]) -> list[list[Recipient]]:
    """Cut in pages of at most ``_PAGE`` recipients and about ``_PAGE_BYTES`` of
    variables (a recipient's may take 32 KiB)."""
    pages: list[list[Recipient]] = [[]]
    size = 0
    for r in recipients:
        entry = len(dump_json(cast(dict[str, Any], r.variables))) + len(r.uid) + 64
        if pages[-1] and (len(pages[-1]) >= _PAGE or size + entry > _PAGE_BYTES):
            pages.append([])
            size = 0
        pages[-1].append(r)
        size += entry
    return [page for page in pages if page]


class MongoRecipients:
    """The audience in pages: one document per run of up to ``_PAGE`` recipients added
    together, its ``_id`` derived from the campaign and its first uid (a retried
    addition writes the same page again, refused as a duplicate). FerretDB turns each
    document it reads into BSON: 10,000 one-recipient documents took ~750 ms to read,
    ten pages of 1,000 take a small part of that."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db["campaign_recipients"]

    async def start(self) -> None:
        await create_index_best_effort(self._col, "campaign_key")

    async def stop(self) -> None:
        return None

    async def uids(self, app_id: str, campaign_id: str) -> set[str]:
        return {r.uid for r in await self.list(app_id, campaign_id)}

    async def add(self, recipients: Sequence[Recipient]) -> None:
        """Store those not in their campaign's audience yet (a retried addition after a
        crash leaves what is there as it is)."""
        by_campaign: dict[tuple[str, str], list[Recipient]] = {}
        for r in recipients:
            by_campaign.setdefault((r.app_id, r.campaign_id), []).append(r)
        docs: list[Document] = []
        for (app_id, campaign_id), own in by_campaign.items():
            present = await self.uids(app_id, campaign_id)
            fresh: list[Recipient] = []
            for r in own:
                if r.uid not in present:
                    present.add(r.uid)
                    fresh.append(r)
            docs += [
                {
                    "_id": derive_id(app_id, campaign_id, "page", page[0].uid),
                    "campaign_key": campaign_key(app_id, campaign_id),
                    "app_id": app_id,
                    "campaign_id": campaign_id,
                    "recipients": json.dumps(
                        [_entry(r) for r in page], separators=(",", ":"), ensure_ascii=False
                    ),
                }
                for page in _pages(fresh)
            ]
        await insert_new(self._col, docs)

    async def list(self, app_id: str, campaign_id: str) -> list[Recipient]:
        cursor = self._col.find({"campaign_key": campaign_key(app_id, campaign_id)})
        return [r async for doc in cursor for r in _recipients_of(doc)]

    async def delete_all(self, app_id: str, campaign_id: str) -> None:
        await self._col.delete_many({"campaign_key": campaign_key(app_id, campaign_id)})


class MongoAudienceLocks:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db["campaign_locks"]

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def acquire(
        self, app_id: str, campaign_id: str, holder: str, now: int, lease_s: int
    ) -> bool:
        lock = {
            "_id": campaign_key(app_id, campaign_id),
            "holder": holder,
            "expires_at": now + lease_s,
        }
        try:
            await self._col.insert_one(lock)
            return True
        except DuplicateKeyError:
            pass
        held = await self._col.find_one({"_id": lock["_id"]})
        if held is not None and int(held["expires_at"]) > now:
            return False
        # A dead holder's lock (its process crashed): remove it, then claim it by an
        # insert again, so that of two claimants only one wins.
        if held is not None:
            await self._col.delete_one({"_id": lock["_id"], "holder": held["holder"]})
        try:
            await self._col.insert_one(lock)
        except DuplicateKeyError:
            return False
        return True

    async def release(self, app_id: str, campaign_id: str, holder: str) -> None:
        await self._col.delete_one({"_id": campaign_key(app_id, campaign_id), "holder": holder})
