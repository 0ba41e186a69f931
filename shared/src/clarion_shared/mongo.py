"""MongoDB plumbing: one ``AsyncMongoClient`` per process (PyMongo's asyncio API).

The embedded server is FerretDB 1.x, which pushes only ``_id`` and top-level equality
filters down to its storage. ``ServerInfo.ferretdb`` tells adapters which one they
talk to: on FerretDB a ``$in`` query reads the whole collection.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pymongo
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from .logging import get_logger

Document = dict[str, Any]

log = get_logger(__name__)


def dump_json(value: Mapping[str, Any]) -> str:
    """Client JSON (template content, metadata) is stored as a JSON string: its keys may
    hold ``.`` or start with ``$``, which the server refuses in field names."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def load_json(value: Any) -> dict[str, Any]:
    """What ``dump_json`` stored (an object stored as one before is read as it is)."""
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class ServerInfo:
    version: str
    ferretdb: bool


def make_client(
    url: str, *, timeout_ms: int = 10_000, max_pool_size: int = 25
) -> AsyncMongoClient[Document]:
    """The process's client. Every operation has a deadline (``timeout_ms``, PyMongo's
    client-side operation timeout: the wait for a pooled connection counts), so a call
    to a database that stopped answering fails instead of holding its caller.

    ``max_pool_size`` bounds the commands one process has in flight. On the embedded
    FerretDB that matters: a command there can hold two of FerretDB's PostgreSQL
    connections at once, so the processes together must keep under half its pool.
    """
    return AsyncMongoClient(
        url,
        serverSelectionTimeoutMS=min(5000, timeout_ms),
        connectTimeoutMS=min(5000, timeout_ms),
        timeoutMS=timeout_ms,
        maxPoolSize=max_pool_size,
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


PING_TIMEOUT_S = 2.0


async def ping(client: AsyncMongoClient[Document]) -> bool:
    """Whether the server answers within ``PING_TIMEOUT_S``.

    PyMongo's own deadline, not an asyncio one: cancelling an operation that waits for
    a pooled connection can leave PyMongo's pool locked for good (Python 3.11), and
    readiness is checked under ``asyncio.wait_for`` (``clarion_shared.http``), whose
    longer limit this one beats.
    """
    try:
        with pymongo.timeout(PING_TIMEOUT_S):
            await client.admin.command("ping")
    except Exception:
        return False
    return True
