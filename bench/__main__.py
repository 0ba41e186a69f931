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
  is open, from the send to its item on the stream;
- campaign-csv-import-10k: a CSV audience of 10,000 users, from the upload-url request
  until import-status says ``completed``; campaign-send-10k: that campaign from
  ``POST .../send`` until its ``BatchCompleted`` (``bench/campaigns.py``);
- emails-10k: 10,000 emails of one batch to a local SMTP server (Mailpit), emails per
  second, beside a bare aiosmtplib sender over as many connections to a Mailpit of its
  own (the floor; two rows, ``bench/emails.py``);
- webhooks-10k: webhook deliveries per second of a 10,000-receiver batch with
  ``after_feed_item_sent`` subscribed, to a local receiver process, alone and then beside
  an endpoint that hangs 10 s (two rows, ``bench/webhooks.py``).

Run with ``make bench``; ``BENCH_SCALE=0.1`` shrinks every count for a quick look.
``BENCH_ONLY`` (a comma-separated list of the names above, e.g.
``BENCH_ONLY=campaign-csv-import-10k,campaign-send-10k``) runs only those scenarios and
writes ``bench/results/latest-only.json``, leaving ``latest.json`` as it was.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from clarion_shared.settings import InfraSettings

from .campaigns import CampaignBench
from .emails import EmailBench
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
from .webhooks import WebhookBench

# BENCH_ONLY: the names of the scenarios to run (all when empty).
ONLY = {name.strip() for name in os.environ.get("BENCH_ONLY", "").split(",") if name.strip()}


async def run(
    settings: InfraSettings, gateway_url: str, processes: Mapping[str, int]
) -> tuple[list[Row], dict[str, Any]]:
    users = n(10_000)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=120) as http:
        # Named first, so that a wrong BENCH_ONLY stops before the setup; they run after it.
        scenarios: dict[str, Callable[[], Awaitable[Row | list[Row]]]] = {
            "realtime-1": lambda: realtime(http, auth, uids, n(200), 1),
            "realtime-5": lambda: realtime(http, auth, uids, n(500), 5),
            "realtime-10": lambda: realtime(http, auth, uids, n(100), 10),
            "realtime-1-sporadic": lambda: realtime_sporadic(http, auth, uids, n(60)),
            "realtime-concurrent": lambda: realtime_concurrent(http, auth, uids, 32, n(25)),
            "batch-10k": lambda: batch(http, auth, uids, settings),
            "realtime-1-during-batch": lambda: realtime_during_batch(http, auth, uids, settings),
            "live-feed-1": lambda: live_feed(http, auth, uids, n(100)),
            "campaign-csv-import-10k": lambda: campaigns.csv_import(),
            "campaign-send-10k": lambda: campaigns.send(),
            "emails-10k": lambda: EmailBench(http, settings, processes).run(),
            # Last: its endpoint stays subscribed to every later batch of the app.
            "webhooks-10k": lambda: WebhookBench(http, auth, uids).run(),
        }
        if unknown := ONLY - scenarios.keys():
            raise SystemExit(f"BENCH_ONLY: no scenario {sorted(unknown)}; see {list(scenarios)}")
        started = time.perf_counter()
        auth, uids = await setup(http, users)
        print(f"setup: {users} users imported in {time.perf_counter() - started:.1f} s", flush=True)
        campaigns = CampaignBench(http, auth, uids, settings)
        # Warm-up: connections, caches, consumer fetch loops.
        await realtime(http, auth, uids, 10, 1)
        rows: list[Row] = []
        for name, scenario in scenarios.items():
            if ONLY and name not in ONLY:
                continue
            done = await scenario()
            for row in done if isinstance(done, list) else [done]:
                rows.append(row)
                print(table(rows[-1:]).splitlines()[-1], flush=True)
        scaled: dict[str, Any] = {}
        batch_row = next((row for row in rows if row.scenario.startswith("batch-")), None)
        if REPLICAS > 1 and batch_row is not None:
            # Scaled out: the batch reached every receiver once, and the groups' members
            # shared the partitions.
            await batch_receivers_once(http, auth, batch_row.extra["batch_id"], uids)
            scaled = {"replicas": REPLICAS, "receivers_listed_once": True}
    return rows, scaled


def main() -> None:
    settings = InfraSettings()
    with bench_stack(settings) as stack:
        pids = {name: process.pid for name, process in stack.processes.items()}
        rows, scaled = asyncio.run(run(settings, stack.gateway_url, pids))
        if scaled:
            scaled["processes"] = process_shares(stack)
            for process, share in scaled["processes"].items():
                print(f"{process}: {share}", flush=True)
    name = "latest" if REPLICAS == 1 else f"replicas-{REPLICAS}"
    write_report(f"{name}-only" if ONLY else name, rows, **scaled)


if __name__ == "__main__":
    main()
