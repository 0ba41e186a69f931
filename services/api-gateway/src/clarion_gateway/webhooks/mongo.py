"""The ``webhooks`` collection: one document per ``{app_id}:{webhook_id}``.

A document is a webhook, or (``deleted: true``) its deletion until the tombstone is
published. ``published: false`` marks a write the emitter has not been told yet (the
outbox, ``outbox``): the republisher finds them with that top-level equality, which
FerretDB pushes down, as the per-app list's ``app_id``. Secrets and the Basic Auth
password are stored as they are: the configuration topic carries them to the emitter.
"""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from clarion_shared.mongo import Document, create_index_best_effort

from .domain import Tombstone, Version, Webhook


def _id(app_id: str, webhook_id: str) -> str:
    return f"{app_id}:{webhook_id}"


def _doc(version: Version) -> Document:
    base: Document = {
        "_id": version.key,
        "app_id": version.app_id,
        "webhook_id": version.webhook_id,
        "updated_at": version.updated_at,
        "published": False,
    }
    if isinstance(version, Tombstone):
        return {**base, "deleted": True}
    return {
        **base,
        "deleted": False,
        "name": version.name,
        "url": version.url,
        "triggers": list(version.triggers),
        "enabled": version.enabled,
        "signing_secret": version.signing_secret,
        "previous_signing_secret": version.previous_signing_secret,
        "previous_secret_expires_at": version.previous_secret_expires_at,
        "use_basic_auth": version.use_basic_auth,
        "username": version.username,
        "password": version.password,
        "disabled_reason": version.disabled_reason,
        "created_at": version.created_at,
    }


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _version(doc: Document) -> Version:
    if doc.get("deleted"):
        return Tombstone(doc["app_id"], doc["webhook_id"], int(doc["updated_at"]))
    return Webhook(
        app_id=doc["app_id"],
        webhook_id=doc["webhook_id"],
        name=doc["name"],
        url=doc["url"],
        triggers=tuple(doc["triggers"]),
        enabled=bool(doc["enabled"]),
        signing_secret=doc["signing_secret"],
        created_at=int(doc["created_at"]),
        updated_at=int(doc["updated_at"]),
        use_basic_auth=bool(doc.get("use_basic_auth")),
        username=doc.get("username"),
        password=doc.get("password"),
        previous_signing_secret=doc.get("previous_signing_secret"),
        previous_secret_expires_at=_optional_int(doc.get("previous_secret_expires_at")),
        disabled_reason=doc.get("disabled_reason"),
    )


class MongoWebhooks:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db["webhooks"]

    async def start(self) -> None:
        """The per-app list's and the outbox's indexes; best effort (FerretDB lacks some)."""
        await create_index_best_effort(self._col, "app_id")
        await create_index_best_effort(self._col, "published")

    async def stop(self) -> None:
        return None

    async def insert(self, webhook: Webhook) -> bool:
        try:
            await self._col.insert_one(_doc(webhook))
        except DuplicateKeyError:
            return False
        return True

    async def stored(self, app_id: str, webhook_id: str) -> Version | None:
        doc = await self._col.find_one({"_id": _id(app_id, webhook_id)})
        return _version(doc) if doc else None

    async def list_for_app(self, app_id: str) -> list[Webhook]:
        found = [_version(doc) async for doc in self._col.find({"app_id": app_id})]
        return [v for v in found if isinstance(v, Webhook)]

    async def save(self, version: Version, previous_updated_at: int) -> bool:
        result = await self._col.replace_one(
            {"_id": version.key, "updated_at": previous_updated_at, "deleted": False},
            _doc(version),
        )
        return result.matched_count == 1

    async def unpublished(self) -> list[Version]:
        return [_version(doc) async for doc in self._col.find({"published": False})]

    async def mark_published(self, version: Version) -> bool:
        if isinstance(version, Tombstone):
            deleted = await self._col.delete_one(
                {"_id": version.key, "updated_at": version.updated_at, "deleted": True}
            )
            return deleted.deleted_count == 1
        updated = await self._col.update_one(
            {"_id": version.key, "updated_at": version.updated_at, "deleted": False},
            {"$set": {"published": True}},
        )
        return updated.matched_count == 1
