"""The gateway's collections: apps, api_keys, channels, templates, idempotency.

Every hot-path read is an ``_id`` lookup (``api_keys`` by key hash, channels and
templates by ``app_id:slug``); lists read one app with a top-level equality on
``appId``, which FerretDB pushes down. Client JSON (channel metadata, template content)
is stored as a JSON string: its keys may hold ``.`` or ``$``, which the server refuses
in field names.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any, cast

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from clarion_shared.contracts.base import JsonObject
from clarion_shared.logging import get_logger
from clarion_shared.mongo import Document, ping

from .. import domain
from ..ports import IdempotencyRecord, StoredResponse

log = get_logger(__name__)


def _dump(value: JsonObject) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _load(value: Any) -> JsonObject:
    if isinstance(value, str):
        loaded = json.loads(value)
        return cast(JsonObject, loaded) if isinstance(loaded, dict) else {}
    return cast(JsonObject, value) if isinstance(value, dict) else {}


class MongoStore:
    """The database handle and the repositories on it."""

    def __init__(self, client: AsyncMongoClient[Document], db_name: str) -> None:
        self.client = client
        self.db: AsyncDatabase[Document] = client[db_name]
        self.apps = MongoApps(self.db)
        self.channels = MongoChannels(self.db)
        self.templates = MongoTemplates(self.db)
        self.idempotency = MongoIdempotency(self.db)

    async def ping(self) -> bool:
        return await ping(self.client)

    async def ensure_indexes(self) -> None:
        """Secondary indexes for the per-app lists; best effort (FerretDB lacks some)."""
        specs: list[tuple[AsyncCollection[Document], str, dict[str, Any]]] = [
            (self.db["channels"], "appId", {}),
            (self.db["templates"], "appId", {}),
            # MongoDB's TTL monitor only reads dates: "expireAt" is "expiresAt" as one.
            (self.db["idempotency"], "expireAt", {"expireAfterSeconds": 0}),
        ]
        for collection, key, options in specs:
            try:
                await collection.create_index(key, **options)
            except OperationFailure as exc:
                # FerretDB 1.x has no TTL indexes: expired idempotency records are then
                # only taken over when their key comes again.
                log.info("mongo.index_skipped", collection=collection.name, error=str(exc))

    async def close(self) -> None:
        await self.client.close()


class MongoApps:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._apps = db["apps"]
        self._keys = db["api_keys"]
        self._channels = db["channels"]

    async def insert(self, app: domain.App, key_hash: str) -> bool:
        try:
            await self._apps.insert_one(
                {"_id": app.app_id, "name": app.name, "createdAt": app.created_at}
            )
        except DuplicateKeyError:
            return False
        try:
            await self._keys.insert_one(
                {"_id": key_hash, "appId": app.app_id, "createdAt": app.created_at}
            )
        except DuplicateKeyError:
            await self._apps.delete_one({"_id": app.app_id})
            return False
        return True

    async def ensure(self, app: domain.App, key_hash: str) -> None:
        for collection, doc_id, fields in (
            (self._apps, app.app_id, {"name": app.name, "createdAt": app.created_at}),
            (self._keys, key_hash, {"appId": app.app_id, "createdAt": app.created_at}),
        ):
            # DuplicateKeyError: another instance created it at the same moment.
            with contextlib.suppress(DuplicateKeyError):
                await collection.update_one({"_id": doc_id}, {"$setOnInsert": fields}, upsert=True)
        owner = await self.app_of_key(key_hash)
        if owner != app.app_id:
            log.warning("app.dev_key_taken", app_id=app.app_id, owner=owner)

    async def app_of_key(self, key_hash: str) -> str | None:
        doc = await self._keys.find_one({"_id": key_hash})
        return str(doc["appId"]) if doc else None

    async def claim_channel_slot(self, app_id: str, channel_type: str, channel_id: str) -> bool:
        # The slot lives in the app document, so claiming it is one conditional update
        # on one _id: two concurrent creates cannot both win.
        field = f"slots.{channel_type}"
        doc = await self._apps.find_one({"_id": app_id})
        holder = ((doc or {}).get("slots") or {}).get(channel_type)
        if holder == channel_id:
            return True
        if holder is not None and await self._channels.find_one({"_id": f"{app_id}:{holder}"}):
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


def _channel_doc(channel: domain.Channel) -> Document:
    return {
        "_id": f"{channel.app_id}:{channel.channel_id}",
        "appId": channel.app_id,
        "channelId": channel.channel_id,
        "name": channel.name,
        "type": channel.type,
        "enabled": channel.enabled,
        "metadata": _dump(channel.metadata),
        "createdAt": channel.created_at,
        "updatedAt": channel.updated_at,
    }


def _channel(doc: Document) -> domain.Channel:
    return domain.Channel(
        app_id=doc["appId"],
        channel_id=doc["channelId"],
        name=doc["name"],
        type=domain.channel_type_of(doc["type"]),
        enabled=bool(doc["enabled"]),
        metadata=_load(doc.get("metadata")),
        created_at=int(doc["createdAt"]),
        updated_at=int(doc["updatedAt"]),
    )


class MongoChannels:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db["channels"]

    async def insert(self, channel: domain.Channel) -> bool:
        try:
            await self._col.insert_one(_channel_doc(channel))
        except DuplicateKeyError:
            return False
        return True

    async def get(self, app_id: str, channel_id: str) -> domain.Channel | None:
        doc = await self._col.find_one({"_id": f"{app_id}:{channel_id}"})
        return _channel(doc) if doc else None

    async def list_for_app(self, app_id: str) -> list[domain.Channel]:
        return [_channel(doc) async for doc in self._col.find({"appId": app_id})]

    async def of_type(self, app_id: str, channel_type: str) -> list[domain.Channel]:
        return [
            _channel(doc) async for doc in self._col.find({"appId": app_id, "type": channel_type})
        ]

    async def replace(self, channel: domain.Channel) -> None:
        await self._col.replace_one(
            {"_id": f"{channel.app_id}:{channel.channel_id}"}, _channel_doc(channel)
        )


def _version_doc(v: domain.TemplateVersion) -> Document:
    return {
        "version": v.version,
        "status": v.status,
        "createdAt": v.created_at,
        "approvedAt": v.approved_at,
        "channels": [
            {"channelType": c.channel_type, "channelId": c.channel_id, "content": _dump(c.content)}
            for c in v.channels
        ],
        "variableSchema": [
            {
                "key": s.key,
                "type": s.type,
                "name": s.name,
                "required": s.required,
                "defaultValue": s.default_value,
            }
            for s in v.variable_schema
        ],
    }


def _template_doc(t: domain.Template, revision: int) -> Document:
    return {
        "_id": f"{t.app_id}:{t.template_id}",
        "appId": t.app_id,
        "templateId": t.template_id,
        "name": t.name,
        "templateCategory": t.template_category,
        "label": t.label,
        "alternativeText": t.alternative_text,
        "tags": list(t.tags),
        "archived": t.archived,
        "revision": revision,
        "createdAt": t.created_at,
        "updatedAt": t.updated_at,
        "versions": [_version_doc(v) for v in t.versions],
    }


def _version(doc: Document) -> domain.TemplateVersion:
    return domain.TemplateVersion(
        version=int(doc["version"]),
        status="approved" if doc["status"] == "approved" else "draft",
        created_at=int(doc["createdAt"]),
        approved_at=int(doc["approvedAt"]) if doc.get("approvedAt") is not None else None,
        channels=tuple(
            domain.TemplateChannel(
                channel_type=domain.channel_type_of(c["channelType"]),
                channel_id=c.get("channelId"),
                content=_load(c.get("content")),
            )
            for c in doc.get("channels", [])
        ),
        variable_schema=tuple(
            domain.VariableDef(
                key=s["key"],
                type="image"
                if s["type"] == "image"
                else "action"
                if s["type"] == "action"
                else "string",
                name=s.get("name"),
                required=bool(s.get("required")),
                default_value=s.get("defaultValue"),
            )
            for s in doc.get("variableSchema", [])
        ),
    )


def _template(doc: Document) -> domain.Template:
    return domain.Template(
        app_id=doc["appId"],
        template_id=doc["templateId"],
        name=doc["name"],
        versions=tuple(_version(v) for v in doc["versions"]),
        created_at=int(doc["createdAt"]),
        updated_at=int(doc["updatedAt"]),
        template_category=doc.get("templateCategory"),
        label=doc.get("label"),
        alternative_text=doc.get("alternativeText"),
        tags=tuple(doc.get("tags") or ()),
        archived=bool(doc.get("archived")),
        revision=int(doc.get("revision", 0)),
    )


class MongoTemplates:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db["templates"]

    async def insert(self, template: domain.Template) -> bool:
        try:
            await self._col.insert_one(_template_doc(template, template.revision))
        except DuplicateKeyError:
            return False
        return True

    async def get(self, app_id: str, template_id: str) -> domain.Template | None:
        doc = await self._col.find_one({"_id": f"{app_id}:{template_id}"})
        return _template(doc) if doc else None

    async def list_for_app(self, app_id: str) -> list[domain.Template]:
        return [_template(doc) async for doc in self._col.find({"appId": app_id})]

    async def replace(self, template: domain.Template) -> bool:
        result = await self._col.replace_one(
            {"_id": f"{template.app_id}:{template.template_id}", "revision": template.revision},
            _template_doc(template, template.revision + 1),
        )
        return result.matched_count == 1


class MongoIdempotency:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db["idempotency"]

    async def begin(
        self, scope_key: str, fingerprint: str, now: int, ttl_s: int, lease_s: int
    ) -> IdempotencyRecord | None:
        fresh: Document = {
            "_id": scope_key,
            "fingerprint": fingerprint,
            "createdAt": now,
            "expiresAt": now + ttl_s,
            "expireAt": datetime.fromtimestamp(now + ttl_s, UTC),
            "status": None,
            "body": None,
        }
        for _ in range(3):
            try:
                await self._col.insert_one(fresh)
                return None
            except DuplicateKeyError:
                pass
            doc = await self._col.find_one({"_id": scope_key})
            if doc is None:
                continue  # released meanwhile: claim again
            abandoned = doc.get("status") is None and int(doc["createdAt"]) + lease_s <= now
            if int(doc["expiresAt"]) > now and not abandoned:
                response = (
                    StoredResponse(int(doc["status"]), str(doc["body"]).encode())
                    if doc.get("status") is not None
                    else None
                )
                return IdempotencyRecord(str(doc["fingerprint"]), int(doc["createdAt"]), response)
            # Expired or abandoned: take it over unless another request just did.
            result = await self._col.replace_one(
                {"_id": scope_key, "createdAt": doc["createdAt"]}, fresh
            )
            if result.matched_count == 1:
                return None
        raise RuntimeError(f"cannot claim idempotency key {scope_key}")

    async def finish(self, scope_key: str, response: StoredResponse) -> None:
        await self._col.update_one(
            {"_id": scope_key},
            {"$set": {"status": response.status, "body": response.body.decode()}},
        )

    async def release(self, scope_key: str) -> None:
        await self._col.delete_one({"_id": scope_key})
