"""What the gateway's Mongo repositories share: the client's lifecycle and readiness,
and how client JSON is stored.

Each resource's ``mongo.py`` names its own collections; this module names none.
"""

from __future__ import annotations

import json
from typing import Any, cast

from pymongo import AsyncMongoClient

from clarion_shared.contracts.base import JsonObject
from clarion_shared.mongo import Document, ping


class MongoConnection:
    """The one client of the process: closed when the service stops, pinged by /readyz."""

    def __init__(self, client: AsyncMongoClient[Document]) -> None:
        self.client = client

    async def start(self) -> None:
        return None  # the client connects on first use

    async def stop(self) -> None:
        await self.client.close()

    async def ready(self) -> bool:
        return await ping(self.client)


def dump_json(value: JsonObject) -> str:
    """Client JSON (channel metadata, template content) is stored as a JSON string: its
    keys may hold ``.`` or ``$``, which the server refuses in field names."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def load_json(value: Any) -> JsonObject:
    if isinstance(value, str):
        loaded = json.loads(value)
        return cast(JsonObject, loaded) if isinstance(loaded, dict) else {}
    return cast(JsonObject, value) if isinstance(value, dict) else {}
