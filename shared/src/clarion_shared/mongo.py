"""MongoDB plumbing: one ``AsyncMongoClient`` per process (PyMongo's asyncio API).

The embedded server is FerretDB 1.x, which pushes only ``_id`` and top-level equality
filters down to its storage. ``ServerInfo.ferretdb`` tells adapters which one they
talk to: on FerretDB a ``$in`` query reads the whole collection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from .logging import get_logger

Document = dict[str, Any]

log = get_logger(__name__)


@dataclass(frozen=True)
class ServerInfo:
    version: str
    ferretdb: bool


def make_client(url: str) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(
        url,
        serverSelectionTimeoutMS=5000,
        connectTimeoutMS=5000,
        maxPoolSize=50,
        tz_aware=False,
    )


async def server_info(db: AsyncDatabase[Document]) -> ServerInfo:
    info = await db.command("buildInfo")
    # FerretDB 1.x answers with "ferretdbVersion" (older releases: "ferretdb").
    ferretdb = "ferretdbVersion" in info or "ferretdb" in info
    return ServerInfo(version=str(info.get("version", "")), ferretdb=ferretdb)


async def create_index_best_effort(
    collection: AsyncCollection[Document], key: str, **options: Any
) -> bool:
    """Create an index the server may not support (FerretDB 1.x lacks TTL indexes, say):
    a refusal is logged, not raised, and the collection works without it. True when made."""
    try:
        await collection.create_index(key, **options)
    except OperationFailure as exc:
        log.info("mongo.index_skipped", collection=collection.name, key=key, error=str(exc))
        return False
    return True


class MongoConnection:
    """The process's one client as a resource: it connects on first use, is closed when
    the service stops, and answers /readyz with a ``ping``."""

    def __init__(self, client: AsyncMongoClient[Document]) -> None:
        self.client = client

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.client.close()

    async def ready(self) -> bool:
        return await ping(self.client)


async def ping(client: AsyncMongoClient[Document]) -> bool:
    try:
        await client.admin.command("ping")
    except Exception:
        return False
    return True
