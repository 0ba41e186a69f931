"""The ``operators``, ``operator_sessions`` and ``operator_login_attempts`` collections.

Every read and write addresses one document by ``_id``: an operator by its lower-cased
email, a session by its token's SHA-256, a count of failed sign-ins by its key and
window. Sessions and counts carry a date for MongoDB's TTL monitor; FerretDB 1.x has
no TTL indexes, so there an expired session is deleted when it is next presented, and
old counts stay (one small document per key and window).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import cast

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from clarion_shared.mongo import Document, create_index_best_effort

from .domain import ROLES, Operator, Role, Session


def _date(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _roles_doc(roles: Mapping[str, Role]) -> list[Document]:
    # A list, not an object keyed by app id: keys stay data, never field names.
    return [{"app_id": app_id, "role": role} for app_id, role in sorted(roles.items())]


def _operator(doc: Document) -> Operator:
    roles = {
        str(item["app_id"]): cast(Role, item["role"])
        for item in doc.get("roles") or []
        if item.get("role") in ROLES
    }
    return Operator(
        email=str(doc["_id"]),
        password_hash=str(doc["password_hash"]),
        superuser=bool(doc.get("superuser")),
        roles=roles,
        created_at=int(doc["created_at"]),
    )


class MongoOperators:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db["operators"]

    async def start(self) -> None:
        return None  # every read is by _id, or the whole (small) collection

    async def stop(self) -> None:
        return None

    async def insert(self, operator: Operator) -> bool:
        try:
            await self._col.insert_one(
                {
                    "_id": operator.email,
                    "password_hash": operator.password_hash,
                    "superuser": operator.superuser,
                    "roles": _roles_doc(operator.roles),
                    "created_at": operator.created_at,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def get(self, email: str) -> Operator | None:
        doc = await self._col.find_one({"_id": email})
        return _operator(doc) if doc else None

    async def list_all(self) -> list[Operator]:
        return [_operator(doc) async for doc in self._col.find({})]

    async def set_roles(self, email: str, roles: Mapping[str, Role]) -> bool:
        result = await self._col.update_one({"_id": email}, {"$set": {"roles": _roles_doc(roles)}})
        return result.matched_count == 1

    async def set_password_hash(self, email: str, password_hash: str) -> None:
        await self._col.update_one({"_id": email}, {"$set": {"password_hash": password_hash}})

    async def ensure_superuser(self, operator: Operator) -> bool:
        try:
            result = await self._col.update_one(
                {"_id": operator.email},
                {
                    "$set": {"superuser": True},
                    "$setOnInsert": {
                        "password_hash": operator.password_hash,
                        "roles": _roles_doc(operator.roles),
                        "created_at": operator.created_at,
                    },
                },
                upsert=True,
            )
        except DuplicateKeyError:  # another process created it at the same moment
            await self._col.update_one({"_id": operator.email}, {"$set": {"superuser": True}})
            return False
        return result.upserted_id is not None


class MongoSessions:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db["operator_sessions"]

    async def start(self) -> None:
        await create_index_best_effort(self._col, "expire_at", expireAfterSeconds=0)

    async def stop(self) -> None:
        return None

    async def insert(self, session: Session, expires_at: int) -> None:
        await self._col.insert_one(
            {
                "_id": session.token_hash,
                "email": session.email,
                "csrf_token": session.csrf_token,
                "created_at": session.created_at,
                "last_seen_at": session.last_seen_at,
                "expire_at": _date(expires_at),
            }
        )

    async def get(self, token_hash: str) -> Session | None:
        doc = await self._col.find_one({"_id": token_hash})
        if doc is None:
            return None
        return Session(
            token_hash=str(doc["_id"]),
            email=str(doc["email"]),
            csrf_token=str(doc["csrf_token"]),
            created_at=int(doc["created_at"]),
            last_seen_at=int(doc["last_seen_at"]),
        )

    async def touch(self, token_hash: str, now: int) -> None:
        await self._col.update_one({"_id": token_hash}, {"$max": {"last_seen_at": now}})

    async def delete(self, token_hash: str) -> None:
        await self._col.delete_one({"_id": token_hash})


class MongoLoginAttempts:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db["operator_login_attempts"]

    async def start(self) -> None:
        await create_index_best_effort(self._col, "expire_at", expireAfterSeconds=0)

    async def stop(self) -> None:
        return None

    async def failures(self, keys: Sequence[str], window_start: int) -> list[int]:
        counts: list[int] = []
        for key in keys:  # a couple of _id reads
            doc = await self._col.find_one({"_id": f"{key}:{window_start}"})
            counts.append(int(doc["failures"]) if doc else 0)
        return counts

    async def record_failure(self, keys: Sequence[str], window_start: int, expires_at: int) -> None:
        for key in keys:
            doc_id = f"{key}:{window_start}"
            update = {"$inc": {"failures": 1}, "$setOnInsert": {"expire_at": _date(expires_at)}}
            try:
                await self._col.update_one({"_id": doc_id}, update, upsert=True)
            except DuplicateKeyError:  # two upserts raced: the document exists now
                await self._col.update_one({"_id": doc_id}, {"$inc": {"failures": 1}})

    async def clear(self, key: str, window_start: int) -> None:
        await self._col.delete_one({"_id": f"{key}:{window_start}"})
