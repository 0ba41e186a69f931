"""Measure Clarion end to end: the four real services on the real Kafka and database.

Scenarios (each prints a row and lands in ``bench/results/latest.json``):

- realtime-1: sequential realtime sends to 1 receiver (latency percentiles);
- realtime-5: 500 sequential realtime sends to 5 receivers (issue 7's latency goal);
- realtime-10: sequential realtime sends to 10 receivers;
- realtime-1-sporadic: realtime sends to 1 receiver 0.25-0.45 s apart (an idle pipeline);
- realtime-concurrent: 32 clients sending realtime to 5 receivers each at once;
- batch-10k: one send to 10,000 receivers, timed from the request until its
  ``BatchCompleted`` (read from ``clarion.status``), i.e. the batch status is
  ``completed``; ``all_dispatched_s``: until every chunk was reported dispatched;
- realtime-1-during-batch: sequential realtime sends to 1 receiver while another
  10,000-receiver batch is fanned out (what a realtime send waits for behind a batch);
- live-feed-1: sequential realtime sends to a user whose live feed (server-sent events)
  is open, from the send to its item on the stream.

Run with ``make bench``; ``BENCH_SCALE=0.1`` shrinks every count for a quick look.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from clarion_shared.settings import InfraSettings

from .scenarios import (
    REPLICAS,
    Row,
    batch,
    batch_receivers_once,
    bench_stack,
    live_feed,
    n,
    process_shares,
    realtime,
    realtime_concurrent,
    realtime_during_batch,
    realtime_sporadic,
    setup,
    table,
    write_report,
)


async def run(settings: InfraSettings, gateway_url: str) -> tuple[list[Row], dict[str, Any]]:
    users = n(10_000)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=120) as http:
        started = time.perf_counter()
        auth, uids = await setup(http, users)
        print(f"setup: {users} users imported in {time.perf_counter() - started:.1f} s", flush=True)
        # Warm-up: connections, caches, consumer fetch loops.
        await realtime(http, auth, uids, 10, 1)
        rows: list[Row] = []
        scenarios: list[Callable[[], Awaitable[Row]]] = [
            lambda: realtime(http, auth, uids, n(200), 1),
            lambda: realtime(http, auth, uids, n(500), 5),
            lambda: realtime(http, auth, uids, n(100), 10),
            lambda: realtime_sporadic(http, auth, uids, n(60)),
            lambda: realtime_concurrent(http, auth, uids, 32, n(25)),
            lambda: batch(http, auth, uids, settings),
            lambda: realtime_during_batch(http, auth, uids, settings),
            lambda: live_feed(http, auth, uids, n(100)),
        ]
        for scenario in scenarios:
            rows.append(await scenario())
            print(table(rows[-1:]).splitlines()[-1], flush=True)
        scaled: dict[str, Any] = {}
        if REPLICAS > 1:
            # Scaled out: the batch reached every receiver once, and the groups' members
            # shared the partitions.
            batch_row = next(row for row in rows if row.scenario.startswith("batch-"))
            await batch_receivers_once(http, auth, batch_row.extra["batch_id"], uids)
            scaled = {"replicas": REPLICAS, "receivers_listed_once": True}
    return rows, scaled


def main() -> None:
    settings = InfraSettings()
    with bench_stack(settings) as stack:
        rows, scaled = asyncio.run(run(settings, stack.gateway_url))
        if scaled:
            scaled["processes"] = process_shares(stack)
            for process, share in scaled["processes"].items():
                print(f"{process}: {share}", flush=True)
    write_report("latest" if REPLICAS == 1 else f"replicas-{REPLICAS}", rows, **scaled)


if __name__ == "__main__":
    main()
