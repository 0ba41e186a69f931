"""The ``apps`` and ``api_keys`` collections.

Keys are read by ``_id`` (the key hash) on every request, so they have a collection of
their own. The slot of a limited channel type (push) lives in the app document.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from clarion_shared.logging import get_logger
from clarion_shared.mongo import Document

from .domain import App

log = get_logger(__name__)

ChannelExists = Callable[[str, str], Awaitable[bool]]


class MongoApps:
    def __init__(self, db: AsyncDatabase[Document], channel_exists: ChannelExists) -> None:
        """``channel_exists(app_id, channel_id)`` tells whether a slot's holder was
        created (the channels repository's)."""
        self._apps = db["apps"]
        self._keys = db["api_keys"]
        self._channel_exists = channel_exists

    async def start(self) -> None:
        return None  # every read is by _id

    async def stop(self) -> None:
        return None

    async def insert(self, app: App, key_hash: str) -> bool:
        try:
            await self._apps.insert_one(
                {"_id": app.app_id, "name": app.name, "created_at": app.created_at}
            )
        except DuplicateKeyError:
            return False
        try:
            await self._keys.insert_one(
                {"_id": key_hash, "app_id": app.app_id, "created_at": app.created_at}
            )
        except DuplicateKeyError:
            await self._apps.delete_one({"_id": app.app_id})
            return False
        return True

    async def ensure(self, app: App, key_hash: str) -> None:
        for collection, doc_id, fields in (
            (self._apps, app.app_id, {"name": app.name, "created_at": app.created_at}),
            (self._keys, key_hash, {"app_id": app.app_id, "created_at": app.created_at}),
        ):
            # DuplicateKeyError: another instance created it at the same moment.
            with contextlib.suppress(DuplicateKeyError):
                await collection.update_one({"_id": doc_id}, {"$setOnInsert": fields}, upsert=True)
        owner = await self.app_of_key(key_hash)
        if owner != app.app_id:
            log.warning("app.dev_key_taken", app_id=app.app_id, owner=owner)

    async def get(self, app_id: str) -> App | None:
        doc = await self._apps.find_one({"_id": app_id})
        return _app(doc) if doc else None

    async def list_all(self) -> list[App]:
        # Operators' dashboards list them; there are a few apps per deployment, not many.
        return [_app(doc) async for doc in self._apps.find({})]

    async def app_of_key(self, key_hash: str) -> str | None:
        doc = await self._keys.find_one({"_id": key_hash})
        return str(doc["app_id"]) if doc else None

    async def claim_channel_slot(self, app_id: str, channel_type: str, channel_id: str) -> bool:
        # The slot lives in the app document, so claiming it is one conditional update
        # on one _id: two concurrent creates cannot both win.
        field = f"slots.{channel_type}"
        doc = await self._apps.find_one({"_id": app_id})
        holder = ((doc or {}).get("slots") or {}).get(channel_type)
        if holder == channel_id:
            return True
        if holder is not None and await self._channel_exists(app_id, holder):
            return False
        # Free, or held by a channel that was never created (a crash between claim and
        # insert): take it, unless someone else moved it meanwhile.
        try:
            result = await self._apps.update_one(
                {"_id": app_id, field: holder},
                {"$set": {field: channel_id}},
                upsert=doc is None,
            )
        except DuplicateKeyError:
            return False
        return result.matched_count == 1 or result.upserted_id is not None

    async def release_channel_slot(self, app_id: str, channel_type: str, channel_id: str) -> None:
        field = f"slots.{channel_type}"
        await self._apps.update_one({"_id": app_id, field: channel_id}, {"$unset": {field: ""}})


def _app(doc: Document) -> App:
    # An app document may exist with its channel slots only (claimed before the app
    # was created, in tests): it has no name then.
    return App(
        app_id=str(doc["_id"]),
        name=str(doc.get("name") or doc["_id"]),
        created_at=int(doc.get("created_at") or 0),
    )
