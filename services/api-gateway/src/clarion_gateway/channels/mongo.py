"""The ``channels`` collection: one document per ``{app_id}:{channel_id}``.

Sends read a channel by ``_id``; lists read one app with a top-level equality on
``app_id``, which FerretDB pushes down.
"""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from clarion_shared.contracts.sends import ChannelType
from clarion_shared.logging import get_logger
from clarion_shared.mongo import Document, create_index_best_effort

from ..mongo import dump_json, load_json
from .domain import Channel, known_channel_type

log = get_logger(__name__)


def stored_channel_type(value: str) -> ChannelType:
    """The channel type of a stored document (only known types are ever stored)."""
    channel_type = known_channel_type(value)
    if channel_type is None:
        raise ValueError(f"stored channel type {value!r} is unknown")
    return channel_type


def _doc(channel: Channel) -> Document:
    return {
        "_id": f"{channel.app_id}:{channel.channel_id}",
        "app_id": channel.app_id,
        "channel_id": channel.channel_id,
        "name": channel.name,
        "type": channel.type,
        "enabled": channel.enabled,
        "metadata": dump_json(channel.metadata),
        "created_at": channel.created_at,
        "updated_at": channel.updated_at,
    }


def _channel(doc: Document) -> Channel:
    return Channel(
        app_id=doc["app_id"],
        channel_id=doc["channel_id"],
        name=doc["name"],
        type=stored_channel_type(doc["type"]),
        enabled=bool(doc["enabled"]),
        metadata=load_json(doc.get("metadata")),
        created_at=int(doc["created_at"]),
        updated_at=int(doc["updated_at"]),
    )


class MongoChannels:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db["channels"]

    async def start(self) -> None:
        """The per-app list's index; best effort (FerretDB lacks some)."""
        await create_index_best_effort(self._col, "app_id")

    async def stop(self) -> None:
        return None

    async def insert(self, channel: Channel) -> bool:
        try:
            await self._col.insert_one(_doc(channel))
        except DuplicateKeyError:
            return False
        return True

    async def get(self, app_id: str, channel_id: str) -> Channel | None:
        doc = await self._col.find_one({"_id": f"{app_id}:{channel_id}"})
        return _channel(doc) if doc else None

    async def exists(self, app_id: str, channel_id: str) -> bool:
        return await self._col.find_one({"_id": f"{app_id}:{channel_id}"}, {"_id": 1}) is not None

    async def list_for_app(self, app_id: str) -> list[Channel]:
        return [_channel(doc) async for doc in self._col.find({"app_id": app_id})]

    async def of_type(self, app_id: str, channel_type: str) -> list[Channel]:
        return [
            _channel(doc) async for doc in self._col.find({"app_id": app_id, "type": channel_type})
        ]

    async def replace(self, channel: Channel) -> None:
        await self._col.replace_one(
            {"_id": f"{channel.app_id}:{channel.channel_id}"}, _doc(channel)
        )
