"""Probes of the local Clarion infrastructure, with the project's own clients.

  python -m clarion_devtools.probe kafka HOST:PORT
      exit 0 when the broker answers a Metadata request (aiokafka's
      AIOKafkaAdminClient.describe_cluster) listing at least one broker and an
      active controller.
  python -m clarion_devtools.probe mongo HOST:PORT
      exit 0 when the server answers {hello: 1} with ok: 1 (pymongo; FerretDB or
      MongoDB, direct connection). FerretDB answers hello itself, without PostgreSQL.
  python -m clarion_devtools.probe ferretdb HOST:PORT
      exit 0 when a read that FerretDB must pass to PostgreSQL answers: find_one on
      clarion_supervisor.heartbeat (the document is inserted when missing, since a
      find on a collection that does not exist is answered from FerretDB's own cache).
  python -m clarion_devtools.probe postgres HOST:PORT PSQL
      exit 0 when PostgreSQL answers ``select 1`` on the ferretdb database (PSQL is
      the psql binary of the cluster's bin dir).

A single attempt of at most about 3 s is made (deploy/local/infra.sh loops with
a deadline); otherwise the reason is printed on stderr as one line and the exit
status is 1 (2 for a usage error). The supervisor (clarion_devtools.supervise) runs
the same checks with its own timeout.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

TIMEOUT_S = 3.0
CLIENT_ID = "clarion-probe"
HEARTBEAT_DB = "clarion_supervisor"
HEARTBEAT_COLLECTION = "heartbeat"
HEARTBEAT_ID = "heartbeat"


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


def split_address(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {addr!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


# --------------------------------------------------------------------- kafka
async def _describe_kafka(addr: str, timeout_s: float) -> dict[str, Any]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=addr,
        client_id=CLIENT_ID,
        request_timeout_ms=int(timeout_s * 1000),
    )
    try:
        await admin.start()
        cluster: dict[str, Any] = await admin.describe_cluster()
    finally:
        await admin.close()
    return cluster


async def check_kafka(addr: str, timeout_s: float = TIMEOUT_S) -> None:
    """A Metadata request answered, naming a broker and an active controller."""
    host, port = split_address(addr)
    cluster = await asyncio.wait_for(_describe_kafka(f"{host}:{port}", timeout_s), timeout_s)
    brokers = cluster.get("brokers") or []
    controller = cluster.get("controller_id")
    if not brokers or controller is None or controller < 0:
        raise RuntimeError(f"not ready: brokers={len(brokers)} controller={controller}")


# --------------------------------------------------------------------- mongo
def _mongo_client(addr: str, timeout_s: float) -> AsyncMongoClient[dict[str, Any]]:
    # The asyncio client: the threaded MongoClient's exit handler joins its
    # monitor threads, which adds ~0.5 s to every run of the probe.
    host, port = split_address(addr)
    timeout_ms = int(timeout_s * 1000)
    return AsyncMongoClient(
        host,
        port,
        directConnection=True,
        appname=CLIENT_ID,
        connectTimeoutMS=timeout_ms,
        serverSelectionTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms,
        timeoutMS=timeout_ms,
        retryReads=False,
        retryWrites=False,
    )


async def _hello_mongo(addr: str, timeout_s: float) -> dict[str, Any]:
    client = _mongo_client(addr, timeout_s)
    try:
        reply: dict[str, Any] = await client.admin.command("hello")
    finally:
        await client.close()
    return reply


async def check_mongo_hello(addr: str, timeout_s: float = TIMEOUT_S) -> None:
    """The server answers hello (FerretDB does so without touching PostgreSQL)."""
    # A little longer than the server selection timeout, so that pymongo's own
    # (more telling) error is the one reported.
    reply = await asyncio.wait_for(_hello_mongo(addr, timeout_s), timeout_s + 1)
    if reply.get("ok") != 1:
        raise RuntimeError(f"hello answered ok={reply.get('ok')}")


async def _read_heartbeat(addr: str, timeout_s: float) -> None:
    client = _mongo_client(addr, timeout_s)
    try:
        heartbeat = client[HEARTBEAT_DB][HEARTBEAT_COLLECTION]
        if await heartbeat.find_one({"_id": HEARTBEAT_ID}) is None:
            await heartbeat.update_one(
                {"_id": HEARTBEAT_ID},
                {"$set": {"written_by": "clarion_devtools.probe"}},
                upsert=True,
            )
    finally:
        await client.close()


async def check_ferretdb(addr: str, timeout_s: float = TIMEOUT_S) -> None:
    """A read that FerretDB passes to PostgreSQL answers (hello and ping do not count:
    a FerretDB whose PostgreSQL connections are stuck still answers them)."""
    await asyncio.wait_for(_read_heartbeat(addr, timeout_s), timeout_s + 1)


# --------------------------------------------------------------------- postgres
async def check_postgres(addr: str, psql: str, timeout_s: float = TIMEOUT_S) -> None:
    """``select 1`` answered on the ferretdb database, through ``psql``."""
    host, port = split_address(addr)
    env = {**os.environ, "PGCONNECT_TIMEOUT": str(max(2, round(timeout_s)))}
    proc = await asyncio.create_subprocess_exec(
        *(psql, "-X", "-q", "-tA", "-h", host, "-p", str(port), "-U", "postgres"),
        *("-d", "ferretdb", "-c", "select 1"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0 or out.strip() != b"1":
        said = " ".join(err.decode(errors="replace").split()) or f"answered {out!r}"
        raise RuntimeError(f"psql exited {proc.returncode}: {said}")


# --------------------------------------------------------------------- cli
def reason(exc: BaseException, logged: str | None = None, timeout_s: float = TIMEOUT_S) -> str:
    """One line naming why a check failed."""
    if isinstance(exc, TimeoutError):
        text = f"no answer within {timeout_s:g}s"
    else:
        # pymongo's server selection errors append a long topology description.
        text = str(exc).split(", Timeout: ")[0] or repr(exc)
        # aiokafka's errors repeat their class name.
        text = text.removeprefix(f"{type(exc).__name__}: ")
        # pymongo's timeouts (server selection included) say so; "No servers found
        # yet" means the server accepted the connection and never answered.
        if getattr(exc, "timeout", False) is True and "Errno" not in text:
            text = f"no answer within {timeout_s:g}s: {text}"
    if logged and logged not in text:
        text = f"{text} ({logged})"
    return f"{type(exc).__name__}: {text}"


def quiet_client_logs() -> _LastRecord:
    """Route the client libraries' warnings to a handler that keeps the last one."""
    handler = _LastRecord()
    for name in ("aiokafka", "pymongo"):
        lib_logger = logging.getLogger(name)
        lib_logger.addHandler(handler)
        lib_logger.propagate = False
    return handler


def main(argv: list[str]) -> int:
    kinds = {"kafka": 3, "mongo": 3, "ferretdb": 3, "postgres": 4}
    if len(argv) < 2 or kinds.get(argv[1]) != len(argv):
        print(__doc__, file=sys.stderr)
        return 2
    kind, addr = argv[1], argv[2]
    handler = quiet_client_logs()
    checks = {
        "kafka": lambda: check_kafka(addr),
        "mongo": lambda: check_mongo_hello(addr),
        "ferretdb": lambda: check_ferretdb(addr),
        "postgres": lambda: check_postgres(addr, argv[3]),
    }
    try:
        asyncio.run(checks[kind]())
    except Exception as exc:
        print(f"{kind} probe {addr}: {reason(exc, handler.last)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
