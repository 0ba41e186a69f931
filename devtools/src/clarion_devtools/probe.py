"""Readiness probes for the local Clarion infrastructure, with the project's own clients.

  python -m clarion_devtools.probe kafka HOST:PORT
      exit 0 when the broker answers a Metadata request (aiokafka's
      AIOKafkaAdminClient.describe_cluster) listing at least one broker and an
      active controller.
  python -m clarion_devtools.probe mongo HOST:PORT
      exit 0 when the server answers {hello: 1} with ok: 1 (pymongo; FerretDB or
      MongoDB, direct connection).

A single attempt of at most about 3 s is made (deploy/local/infra.sh loops with
a deadline); otherwise the reason is printed on stderr as one line and the exit
status is 1 (2 for a usage error).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

TIMEOUT_S = 3.0
CLIENT_ID = "clarion-probe"


class _LastRecord(logging.Handler):
    """Keeps the last warning a client library logged, to name the cause of a failure.

    aiokafka logs why a bootstrap connection failed and then raises a generic
    "Unable to bootstrap" error; installing this handler also keeps that log line
    off stderr (the probe prints a single line).
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.last = record.getMessage()


def _split(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {addr!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


# --------------------------------------------------------------------- kafka
async def _describe_kafka(addr: str) -> dict[str, Any]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=addr,
        client_id=CLIENT_ID,
        request_timeout_ms=int(TIMEOUT_S * 1000),
    )
    try:
        await admin.start()
        cluster: dict[str, Any] = await admin.describe_cluster()
    finally:
        await admin.close()
    return cluster


def probe_kafka(addr: str) -> None:
    host, port = _split(addr)
    cluster = asyncio.run(asyncio.wait_for(_describe_kafka(f"{host}:{port}"), TIMEOUT_S))
    brokers = cluster.get("brokers") or []
    controller = cluster.get("controller_id")
    if not brokers or controller is None or controller < 0:
        raise RuntimeError(f"not ready: brokers={len(brokers)} controller={controller}")


# --------------------------------------------------------------------- mongo
async def _hello_mongo(host: str, port: int) -> dict[str, Any]:
    # The asyncio client: the threaded MongoClient's exit handler joins its
    # monitor threads, which adds ~0.5 s to every run of the probe.
    from pymongo import AsyncMongoClient

    timeout_ms = int(TIMEOUT_S * 1000)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        host,
        port,
        directConnection=True,
        appname=CLIENT_ID,
        connectTimeoutMS=timeout_ms,
        serverSelectionTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms,
        retryReads=False,
    )
    try:
        reply: dict[str, Any] = await client.admin.command("hello")
    finally:
        await client.close()
    return reply


def probe_mongo(addr: str) -> None:
    host, port = _split(addr)
    # A little longer than the server selection timeout, so that pymongo's own
    # (more telling) error is the one reported.
    reply = asyncio.run(asyncio.wait_for(_hello_mongo(host, port), TIMEOUT_S + 1))
    if reply.get("ok") != 1:
        raise RuntimeError(f"hello answered ok={reply.get('ok')}")


def _reason(exc: BaseException, logged: str | None) -> str:
    if isinstance(exc, TimeoutError):
        text = f"no answer within {TIMEOUT_S:g}s"
    else:
        # pymongo's server selection errors append a long topology description.
        text = str(exc).split(", Timeout: ")[0] or repr(exc)
        # aiokafka's errors repeat their class name.
        text = text.removeprefix(f"{type(exc).__name__}: ")
    if logged and logged not in text:
        text = f"{text} ({logged})"
    return f"{type(exc).__name__}: {text}"


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("kafka", "mongo"):
        print(__doc__, file=sys.stderr)
        return 2
    kind, addr = argv[1], argv[2]
    handler = _LastRecord()
    for name in ("aiokafka", "pymongo"):
        lib_logger = logging.getLogger(name)
        lib_logger.addHandler(handler)
        lib_logger.propagate = False
    try:
        (probe_kafka if kind == "kafka" else probe_mongo)(addr)
    except Exception as exc:
        print(f"{kind} probe {addr}: {_reason(exc, handler.last)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
