"""The deliveries' collections, the only place they are named.

- ``webhook_intakes``: what a fetch of status events owes, one document per up to
  500 deliveries (``engine.INTAKE_ITEMS``, as one JSON string), written before the
  fetch is committed and removed once each of its deliveries has a record: the Kafka
  offset moves on at once, and a process that dies leaves its intakes to whoever
  adopts it.
- ``webhook_deliveries``: one record per delivery, ``_id = app:webhook:msg_id``, written
  once after its first attempt (in bulk: the common case costs one insert) and updated
  by later attempts only.
- ``webhook_emitters``: each process's heartbeat (``owner``), and ``takeover:<owner>``
  locks: one live process adopts a dead one's intakes and pending deliveries.

Every query is an ``_id`` lookup or a top-level equality (``owner``, ``status``,
``endpoint_key``), which FerretDB pushes down; every multi-document write is an insert.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from clarion_shared.mongo import Document, create_index_best_effort

from .domain import Attempt, Delivery

DUPLICATE_KEY = 11000


def _attempt_doc(attempt: Attempt) -> dict[str, Any]:
    return {
        "at": attempt.at,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
        "response": attempt.response,
        "kind": attempt.kind,
    }


def _attempt(doc: dict[str, Any]) -> Attempt:
    return Attempt(
        at=int(doc["at"]),
        status_code=doc.get("status_code"),
        error=doc.get("error"),
        duration_ms=int(doc.get("duration_ms") or 0),
        response=doc.get("response"),
        kind=doc.get("kind") or "schedule",
    )


def _item(delivery: Delivery) -> dict[str, Any]:
    return {
        "msg_id": delivery.msg_id,
        "app_id": delivery.app_id,
        "webhook_id": delivery.webhook_id,
        "trigger": delivery.trigger,
        "body": delivery.body,
        "created_at": delivery.created_at,
    }


def _packed(delivery: Delivery) -> str:
    return json.dumps(
        {
            **_item(delivery),
            "attempts": [_attempt_doc(a) for a in delivery.attempts],
            "next_attempt_at": delivery.next_attempt_at,
            "updated_at": delivery.updated_at,
            "kind": delivery.kind,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _doc(delivery: Delivery, owner: str) -> Document:
    """A record: what queries select on at the top (FerretDB pushes those equalities
    down), the rest in one JSON string, which FerretDB stores far cheaper than as fields
    and subdocuments."""
    return {
        "_id": delivery.id,
        "endpoint_key": delivery.endpoint_key,
        "status": delivery.status,
        "owner": owner,
        "created_at": delivery.created_at,
        "delivery": _packed(delivery),
    }


def _delivery(fields: dict[str, Any], status: str = "pending") -> Delivery:
    return Delivery(
        msg_id=fields["msg_id"],
        app_id=fields["app_id"],
        webhook_id=fields["webhook_id"],
        trigger=fields["trigger"],
        body=fields["body"],
        created_at=int(fields["created_at"]),
        status=status,  # type: ignore[arg-type]
        attempts=tuple(_attempt(a) for a in fields.get("attempts") or ()),
        next_attempt_at=fields.get("next_attempt_at"),
        updated_at=int(fields.get("updated_at") or fields["created_at"]),
        kind=fields.get("kind") or "schedule",
    )


def _record(doc: Document) -> Delivery:
    return _delivery(json.loads(doc["delivery"]), doc["status"])


async def _insert_absent(collection: Any, docs: list[Document]) -> None:
    if not docs:
        return
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if exc.details.get("writeConcernErrors") or any(
            e.get("code") != DUPLICATE_KEY for e in errors
        ):
            raise


class MongoDeliveries:
    """Intakes and delivery records in MongoDB (or FerretDB)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._intakes = db["webhook_intakes"]
        self._deliveries = db["webhook_deliveries"]

    async def start(self) -> None:
        await create_index_best_effort(self._intakes, "owner")
        for key in ("owner", "endpoint_key", "status"):
            await create_index_best_effort(self._deliveries, key)

    async def stop(self) -> None:
        """Nothing to release: the client is closed by whoever made it."""

    async def add_intake(self, intake_id: str, owner: str, items: Sequence[Delivery]) -> None:
        packed = json.dumps([_item(d) for d in items], separators=(",", ":"), ensure_ascii=False)
        await self._intakes.insert_one({"_id": intake_id, "owner": owner, "items": packed})

    async def drop_intake(self, intake_id: str) -> None:
        await self._intakes.delete_one({"_id": intake_id})

    async def intakes_of(self, owner: str) -> list[tuple[str, list[Delivery]]]:
        found: list[tuple[str, list[Delivery]]] = []
        async for doc in self._intakes.find({"owner": owner}):
            found.append((doc["_id"], [_delivery(item) for item in json.loads(doc["items"])]))
        return found

    async def move_intake(self, intake_id: str, owner: str) -> None:
        await self._intakes.update_one({"_id": intake_id}, {"$set": {"owner": owner}})

    async def record_first(self, deliveries: Sequence[Delivery], owner: str) -> None:
        """Store each delivery's record unless one is stored already."""
        await _insert_absent(self._deliveries, [_doc(d, owner) for d in deliveries])

    async def save(self, delivery: Delivery, owner: str) -> None:
        doc = _doc(delivery, owner)
        await self._deliveries.update_one({"_id": doc.pop("_id")}, {"$set": doc}, upsert=True)

    async def recorded(self, delivery_id: str) -> bool:
        return await self._deliveries.find_one({"_id": delivery_id}, {"_id": 1}) is not None

    async def get(self, delivery_id: str) -> Delivery | None:
        doc = await self._deliveries.find_one({"_id": delivery_id})
        return _record(doc) if doc else None

    async def claim(self, delivery: Delivery, owner: str) -> bool:
        """Make a finished delivery pending again under ``owner`` (an operator's retry
        or a replay); False when it is pending already."""
        doc = _doc(delivery, owner)
        result = await self._deliveries.update_one(
            {"_id": doc.pop("_id"), "status": {"$ne": "pending"}}, {"$set": doc}
        )
        return bool(result.modified_count)

    async def of_endpoint(self, endpoint_key: str, status: str | None) -> list[Delivery]:
        query: Document = {"endpoint_key": endpoint_key}
        if status is not None:
            query["status"] = status
        return [_record(doc) async for doc in self._deliveries.find(query)]

    async def pending_of(self, owner: str) -> list[Delivery]:
        return [
            _record(doc)
            async for doc in self._deliveries.find({"owner": owner, "status": "pending"})
        ]


class MongoInstances:
    """Heartbeats and takeover locks (``webhook_emitters``)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db["webhook_emitters"]

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def beat(self, owner: str, alive_until_ms: int) -> None:
        await self._col.update_one(
            {"_id": owner},
            {"$set": {"alive_until": alive_until_ms, "kind": "emitter"}},
            upsert=True,
        )

    async def alive_until(self) -> dict[str, int]:
        return {
            doc["_id"]: int(doc["alive_until"]) async for doc in self._col.find({"kind": "emitter"})
        }

    async def forget(self, owner: str) -> None:
        await self._col.delete_one({"_id": owner})
        await self._col.delete_one({"_id": f"takeover:{owner}"})

    async def lock(self, dead: str, by: str) -> bool:
        try:
            await self._col.insert_one({"_id": f"takeover:{dead}", "kind": "takeover", "by": by})
        except DuplicateKeyError:
            return False
        return True

    async def holder(self, dead: str) -> str | None:
        doc = await self._col.find_one({"_id": f"takeover:{dead}"})
        return str(doc["by"]) if doc else None

    async def unlock(self, dead: str, by: str) -> None:
        await self._col.delete_one({"_id": f"takeover:{dead}", "by": by})
