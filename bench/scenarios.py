"""The benchmark's scenarios, its stack and its report (``make bench``, ``make bench-scale``).

Each scenario drives the real stack over HTTP and returns a ``Row``; ``bench_stack``
starts the four services on their own database and topics; ``write_report`` prints the
table and writes it under ``bench/results/``. ``BENCH_SCALE=0.1`` shrinks every count.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from httpx_sse import aconnect_sse

from clarion_devtools.devstack import SERVICE_PREFIXES, Stack, stack_env
from clarion_shared.contracts.status import (
    BatchCompleted,
    ChunkDispatched,
    status_event_adapter,
)
from clarion_shared.ids import new_id
from clarion_shared.settings import InfraSettings
from clarion_shared.topics import Topics

_PORT_BASE = int(os.environ.get("BENCH_PORT_BASE", "28080"))
PORTS = {
    "api-gateway": _PORT_BASE,
    "dispatcher": _PORT_BASE + 1,
    "webhook-emitter": _PORT_BASE + 2,
    "user-directory": _PORT_BASE + 3,
}
ADMIN_TOKEN = "bench-admin-token"
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
# Processes of the dispatcher and of the user-directory (same consumer groups).
REPLICAS = int(os.environ.get("BENCH_REPLICAS", "1"))
RESULTS = Path(__file__).parent / "results"
BENCH_DB = f"bench_{int(time.time())}"
BENCH_TOPIC_PREFIX = f"{BENCH_DB}."  # the stack's topics are its own (see Stack)
BENCH_STATUS = Topics(BENCH_TOPIC_PREFIX).status


@dataclass
class Row:
    scenario: str
    operations: int
    notifications: int
    seconds: float
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def notifications_per_s(self) -> float:
        return self.notifications / self.seconds if self.seconds else 0.0


def n(count: int) -> int:
    return max(1, int(count * SCALE))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def setup(http: httpx.AsyncClient, users: int) -> tuple[dict[str, str], list[str]]:
    app = (
        (
            await http.post(
                "/admin/apps",
                json={"name": "bench"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
        )
        .raise_for_status()
        .json()["data"]
    )
    auth = {"apikey": app["apiKey"], "appid": app["appId"]}
    uids = [f"user-{i:05d}" for i in range(users)]
    for start in range(0, users, 1000):
        chunk = [{"uid": uid, "name": f"User {uid}"} for uid in uids[start : start + 1000]]
        (
            await http.post("/v3/users/import", json={"users": chunk}, headers=auth)
        ).raise_for_status()
    (
        await http.post(
            "/v3/campaigns/channels",
            json={"name": "In-app", "type": "in_app", "enabled": True},
            headers=auth,
        )
    ).raise_for_status()
    template = {
        "name": "Bench",
        "templateId": "bench",
        "channels": [
            {"channelType": "in_app", "content": {"title": "Hi {{name}}", "body": "#{{n}}"}}
        ],
        "variableSchema": [
            {"key": "name", "type": "string", "required": True},
            {"key": "n", "type": "string", "defaultValue": "0"},
        ],
    }
    (await http.post("/v3/campaigns/templates", json=template, headers=auth)).raise_for_status()
    (
        await http.put("/v3/campaigns/templates/bench", json={"status": "approved"}, headers=auth)
    ).raise_for_status()
    return auth, uids


def send_body(receivers: list[str], common: str) -> dict[str, Any]:
    return {
        "templateId": "bench",
        "receivers": receivers,
        "variables": {uid: {"name": uid, "n": common} for uid in receivers},
    }


async def realtime(
    http: httpx.AsyncClient, auth: dict[str, str], uids: list[str], sends: int, width: int
) -> Row:
    """Sequential realtime sends to ``width`` receivers each."""

    async def send(i: int) -> int:
        receivers = [uids[(i * width + j) % len(uids)] for j in range(width)]
        response = await http.post(
            "/v3/campaigns/notifications/messages",
            json=send_body(receivers, str(i)),
            headers=auth,
        )
        data = response.raise_for_status().json()["data"]
        assert data["mode"] == "realtime"
        assert all(r["status"] == "sent" for r in data["receivers"]), data
        return width

    return await sequential(f"realtime-{width}", sends, send)


async def realtime_sporadic(
    http: httpx.AsyncClient, auth: dict[str, str], uids: list[str], sends: int
) -> Row:
    """Realtime sends to 1 receiver that come now and then (0.25-0.45 s apart, seeded),
    as most apps send: what a send costs when the pipeline was idle before it. The
    time between sends is not counted."""
    pauses = random.Random(7)
    latencies: list[float] = []
    for i in range(sends):
        await asyncio.sleep(pauses.uniform(0.25, 0.45))
        t0 = time.perf_counter()
        response = await http.post(
            "/v3/campaigns/notifications/messages",
            json=send_body([uids[-1 - i % len(uids)]], f"sporadic-{i}"),
            headers=auth,
        )
        latencies.append((time.perf_counter() - t0) * 1000)
        assert response.raise_for_status().json()["data"]["mode"] == "realtime"
    return Row(
        "realtime-1-sporadic",
        sends,
        sends,
        sum(latencies) / 1000,
        percentile(latencies, 0.5),
        percentile(latencies, 0.95),
        percentile(latencies, 0.99),
        {"pause_s": "0.25-0.45"},
    )


async def realtime_concurrent(
    http: httpx.AsyncClient, auth: dict[str, str], uids: list[str], clients: int, each: int
) -> Row:
    width = 5
    latencies: list[float] = []

    async def client(c: int) -> None:
        for i in range(each):
            receivers = [uids[(c * 997 + i * width + j) % len(uids)] for j in range(width)]
            t0 = time.perf_counter()
            response = await http.post(
                "/v3/campaigns/notifications/messages",
                json=send_body(receivers, f"{c}-{i}"),
                headers=auth,
            )
            latencies.append((time.perf_counter() - t0) * 1000)
            response.raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    elapsed = time.perf_counter() - started
    return Row(
        "realtime-concurrent",
        clients * each,
        clients * each * width,
        elapsed,
        percentile(latencies, 0.5),
        percentile(latencies, 0.95),
        percentile(latencies, 0.99),
        {"clients": clients},
    )


async def batch(
    http: httpx.AsyncClient, auth: dict[str, str], uids: list[str], settings: InfraSettings
) -> Row:
    consumer = AIOKafkaConsumer(
        BENCH_STATUS,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"bench-{new_id()}",
        auto_offset_reset="latest",
        enable_auto_commit=False,
        isolation_level="read_committed",  # BatchCompleted is published in a transaction
    )
    await consumer.start()
    try:
        # Make sure the new group holds its partitions before the send starts.
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
        for tp in consumer.assignment():
            await consumer.position(tp)
        started = time.perf_counter()
        response = await http.post(
            "/v3/campaigns/notifications/messages",
            json=send_body(uids, "batch"),
            headers=auth,
        )
        accepted_ms = (time.perf_counter() - started) * 1000
        data = response.raise_for_status().json()["data"]
        assert data["mode"] == "batch", data
        batch_id, total = data["batchId"], data["total"]
        done = 0
        chunks_seen: set[int] = set()
        dispatched_s: float | None = None
        completed: BatchCompleted | None = None
        deadline = time.monotonic() + 600
        while completed is None and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    event = status_event_adapter.validate_json(record.value)
                    if event.send_id != batch_id:
                        continue
                    if isinstance(event, ChunkDispatched) and event.chunk not in chunks_seen:
                        chunks_seen.add(event.chunk)
                        done += event.sent + event.failed
                        if done == total:
                            dispatched_s = time.perf_counter() - started
                    elif isinstance(event, BatchCompleted):
                        completed = event
        elapsed = time.perf_counter() - started
        if completed is None:
            raise RuntimeError(f"batch not completed after 600 s: {done}/{total} dispatched")
        assert (completed.status, completed.sent) == ("completed", total), completed
        return Row(
            f"batch-{total}",
            1,
            total,
            elapsed,
            extra={
                "batch_id": batch_id,
                "accepted_ms": round(accepted_ms, 1),
                "all_dispatched_s": round(dispatched_s or elapsed, 2),
                "chunks": len(chunks_seen),
            },
        )
    finally:
        await consumer.stop()


async def realtime_during_batch(
    http: httpx.AsyncClient, auth: dict[str, str], uids: list[str], settings: InfraSettings
) -> Row:
    latencies: list[float] = []
    batch_done = asyncio.Event()

    async def probe() -> None:
        i = 0
        while not batch_done.is_set():
            t0 = time.perf_counter()
            response = await http.post(
                "/v3/campaigns/notifications/messages",
                json=send_body([uids[i % len(uids)]], f"probe-{i}"),
                headers=auth,
            )
            latencies.append((time.perf_counter() - t0) * 1000)
            assert response.raise_for_status().json()["data"]["mode"] == "realtime"
            i += 1

    async def batch_then_stop() -> Row:
        try:
            return await batch(http, auth, uids, settings)
        finally:
            batch_done.set()

    started = time.perf_counter()
    batch_row, _ = await asyncio.gather(batch_then_stop(), probe())
    elapsed = time.perf_counter() - started
    return Row(
        f"realtime-1-during-{batch_row.scenario}",
        len(latencies),
        len(latencies),
        elapsed,
        percentile(latencies, 0.5),
        percentile(latencies, 0.95),
        percentile(latencies, 0.99),
        {"max_ms": round(max(latencies), 1), "batch_seconds": round(batch_row.seconds, 2)},
    )


async def live_feed(
    http: httpx.AsyncClient, auth: dict[str, str], uids: list[str], sends: int
) -> Row:
    """Sequential realtime sends to a user whose live feed is open: from the send's start
    to its item arriving on the stream (server-sent events through the gateway)."""
    uid = uids[-1]
    headers = {**auth, "onbehalfof": uid}
    latencies: list[float] = []
    started = time.perf_counter()
    async with aconnect_sse(
        http, "GET", "/v3/campaigns/notification-feed/stream", headers=headers, timeout=None
    ) as source:
        events = source.aiter_sse()
        await asyncio.sleep(1.0)  # the dispatcher counts the stream before the first send
        for i in range(sends):
            t0 = time.perf_counter()
            response = await http.post(
                "/v3/campaigns/notifications/messages",
                json=send_body([uid], f"live-{i}"),
                headers=auth,
            )
            response.raise_for_status()
            async for event in events:
                if event.event == "feed_item" and f"#live-{i}" in event.data:
                    break
            latencies.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - started
    return Row(
        "live-feed-1",
        sends,
        sends,
        elapsed,
        percentile(latencies, 0.5),
        percentile(latencies, 0.95),
        percentile(latencies, 0.99),
    )


def table(rows: list[Row]) -> str:
    lines = [
        "| scenario | sends | notifications | seconds | notifications/s "
        "| p50 ms | p95 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def fmt(value: float | None) -> str:
        return "" if value is None else f"{value:.1f}"

    for row in rows:
        lines.append(
            f"| {row.scenario} | {row.operations} | {row.notifications} | {row.seconds:.2f} "
            f"| {row.notifications_per_s:.0f} | {fmt(row.p50_ms)} | {fmt(row.p95_ms)} "
            f"| {fmt(row.p99_ms)} |"
        )
    return "\n".join(lines)


@contextmanager
def bench_stack(settings: InfraSettings) -> Iterator[Stack]:
    """The four services on the bench's own databases and topics (ports 28080-28083),
    ``BENCH_REPLICAS`` processes of the dispatcher and of the user-directory. The
    databases are dropped afterwards unless ``BENCH_KEEP_DB=1``."""
    env = stack_env(
        settings.kafka_bootstrap_servers,
        settings.mongodb_url,
        db_name=BENCH_DB,
        ports=PORTS,
        admin_token=ADMIN_TOKEN,
        log_level=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        topic_prefix=BENCH_TOPIC_PREFIX,
    )
    with Stack(
        env=env,
        log_dir=Path(".local/logs/bench"),
        gateway_port=PORTS["api-gateway"],
        own_topics=True,
        own_databases=os.environ.get("BENCH_KEEP_DB") != "1",
        replicas={"dispatcher": REPLICAS, "user-directory": REPLICAS},
    ) as stack:
        yield stack


def write_report(name: str, rows: list[Row], **extra: Any) -> Path:
    """Print the table; write the rows (and ``extra``) to ``bench/results/<name>.json``."""
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "scale": SCALE,
        "broker": "Apache Kafka 4.1.1 (KRaft, embedded)",
        "database": "FerretDB v1.24.2 on PostgreSQL (embedded)",
        "rows": [asdict(row) | {"notifications_per_s": row.notifications_per_s} for row in rows],
        **extra,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(table(rows))
    print(f"\nwritten to {path}")
    return path


async def sequential(
    name: str, operations: int, call: Callable[[int], Awaitable[int]], **extra: Any
) -> Row:
    """``call(i)`` ``operations`` times, one after the other; it returns how many
    notifications (or users) the operation carried."""
    latencies: list[float] = []
    carried = 0
    started = time.perf_counter()
    for i in range(operations):
        t0 = time.perf_counter()
        carried += await call(i)
        latencies.append((time.perf_counter() - t0) * 1000)
    return Row(
        name,
        operations,
        carried,
        time.perf_counter() - started,
        percentile(latencies, 0.5),
        percentile(latencies, 0.95),
        percentile(latencies, 0.99),
        extra,
    )


async def feed_page(
    http: httpx.AsyncClient, auth: dict[str, str], uids: list[str], reads: int
) -> Row:
    """Sequential first pages (20 items) of users' in-app feeds."""

    async def read(i: int) -> int:
        uid = uids[(i * 37) % len(uids)]
        response = await http.get(
            "/v3/campaigns/notification-feed", headers={**auth, "onbehalfof": uid}
        )
        return len(response.raise_for_status().json()["data"])

    return await sequential("feed-page", reads, read)


async def user_get(
    http: httpx.AsyncClient, auth: dict[str, str], uids: list[str], reads: int
) -> Row:
    """Sequential ``GET /v3/users/{uid}``."""

    async def read(i: int) -> int:
        response = await http.get(f"/v3/users/{uids[(i * 37) % len(uids)]}", headers=auth)
        response.raise_for_status()
        return 1

    return await sequential("user-get", reads, read)


async def import_users(http: httpx.AsyncClient, auth: dict[str, str], calls: int, tag: str) -> Row:
    """Sequential imports of 1,000 new users each (the documented maximum per call)."""

    async def one(i: int) -> int:
        users = [{"uid": f"imp-{tag}-{i}-{j:04d}", "name": f"Imported {j}"} for j in range(1000)]
        response = await http.post("/v3/users/import", json={"users": users}, headers=auth)
        created: int = response.raise_for_status().json()["data"]["created"]
        assert created == len(users), response.text
        return created

    return await sequential("import-1000", calls, one)


def process_shares(stack: Stack) -> dict[str, dict[str, float]]:
    """Per dispatcher and user-directory process: the partitions it holds in each of its
    consumer groups and the receivers it fanned out (its ``/metrics``)."""
    wanted = ("clarion_kafka_partitions_assigned", "clarion_dispatch_receivers_total")
    shares: dict[str, dict[str, float]] = {}
    for service in ("dispatcher", "user-directory"):
        for process in stack.process_names(service):
            port = stack.env_of(process)[f"{SERVICE_PREFIXES[service]}PORT"]
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            shares[process] = {
                line.split(" ")[0].replace(BENCH_TOPIC_PREFIX, ""): float(line.split(" ")[1])
                for line in text.splitlines()
                if line.startswith(wanted) and not line.startswith("#")
            }
    return shares


async def batch_receivers_once(
    http: httpx.AsyncClient, auth: dict[str, str], batch_id: str, uids: list[str]
) -> None:
    """Every receiver of the batch is listed once, sent, in send order."""
    listed: list[str] = []
    page = 1
    while True:
        response = await http.get(
            f"/v3/campaigns/notifications/batches/{batch_id}/receivers",
            params={"page": page, "perPage": 100},
            headers=auth,
        )
        body = response.raise_for_status().json()
        assert all(r["status"] == "sent" for r in body["data"]), body["data"]
        listed += [r["uid"] for r in body["data"]]
        if page >= body["meta"]["pagination"]["total_pages"]:
            break
        page += 1
    assert listed == uids, f"{len(listed)} listed, {len(set(listed))} distinct, {len(uids)} sent"
