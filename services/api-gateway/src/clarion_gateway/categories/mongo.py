"""The ``template_categories`` collection: one document per app (``_id`` is the app id),
its categories embedded in creation order.

Every read and save is by ``_id``, so the collection needs no index of its own: on
FerretDB an ``_id`` lookup is the one query that does not depend on how many apps
there are.

Saves are conditional on ``revision`` (optimistic concurrency), which keeps names
unique per app under concurrent requests. A conditional ``replace_one`` alone is not
enough on FerretDB 1.24: it selects, then writes, so several concurrent replaces with
the same ``{_id, revision}`` filter all match (measured: up to 6 of 6). An insert is
atomic there (PostgreSQL's primary key), so each save first inserts a claim on the
revision it makes, ``{app_id}@{revision}`` in ``template_category_claims``: one
writer per revision gets it. A claim left by a process that died before its replace
is taken over once older than ``claim_lease_s``.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from clarion_shared.mongo import Document

from .domain import AppCategories, Category


def _category_doc(c: Category) -> Document:
    return {
        "id": c.category_id,
        "name": c.name,
        "description": c.description,
        "default": c.default,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    }


def _doc(categories: AppCategories, revision: int) -> Document:
    return {
        "_id": categories.app_id,
        "revision": revision,
        "categories": [_category_doc(c) for c in categories.categories],
    }


def _category(doc: dict[str, Any]) -> Category:
    return Category(
        category_id=str(doc["id"]),
        name=str(doc["name"]),
        description=doc.get("description"),
        created_at=int(doc["created_at"]),
        updated_at=int(doc["updated_at"]),
        default=bool(doc.get("default")),
    )


def _categories(doc: Document) -> AppCategories:
    return AppCategories(
        app_id=str(doc["_id"]),
        categories=tuple(_category(c) for c in doc.get("categories", [])),
        revision=int(doc.get("revision", 0)),
    )


# A claim older than this is a dead writer's: saves take it over.
CLAIM_LEASE_S = 10.0


class MongoCategories:
    def __init__(self, db: AsyncDatabase[Document], claim_lease_s: float = CLAIM_LEASE_S) -> None:
        self._col = db["template_categories"]
        self._claims = db["template_category_claims"]
        self._lease_s = claim_lease_s

    async def start(self) -> None:
        return None  # every read is by _id

    async def stop(self) -> None:
        return None

    async def get(self, app_id: str) -> AppCategories | None:
        doc = await self._col.find_one({"_id": app_id})
        return _categories(doc) if doc else None

    async def insert(self, categories: AppCategories) -> bool:
        try:
            await self._col.insert_one(_doc(categories, categories.revision))
        except DuplicateKeyError:
            return False
        return True

    async def replace(self, categories: AppCategories) -> bool:
        app_id, revision = categories.app_id, categories.revision
        claim = f"{app_id}@{revision + 1}"
        if not await self._claim(claim):
            return False
        result = await self._col.replace_one(
            {"_id": app_id, "revision": revision}, _doc(categories, revision + 1)
        )
        if result.matched_count != 1:  # read before another save: nothing written
            await self._claims.delete_one({"_id": claim})
            return False
        # The previous save's claim: nobody who read this revision can need it.
        await self._claims.delete_one({"_id": f"{app_id}@{revision}"})
        return True

    async def _claim(self, claim: str) -> bool:
        """Whether this writer alone may make the revision ``claim`` names."""
        for _ in range(2):
            with contextlib.suppress(DuplicateKeyError):
                await self._claims.insert_one({"_id": claim, "claimed_at": time.time()})
                return True
            held = await self._claims.find_one({"_id": claim})
            if held is not None and float(held["claimed_at"]) > time.time() - self._lease_s:
                return False
            # A dead writer's claim (or one just released): take it over.
            await self._claims.delete_one(
                {"_id": claim, "claimed_at": (held or {}).get("claimed_at")}
            )
        return False
