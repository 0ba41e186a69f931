"""``make bench-scale``: is the cost flat as data grows?

The hot operations are measured on an empty database, then again once 1,000,000 users
and 1,000,000 feed items of other apps are stored (20 apps, 100,000 users with 10 items
each), and the ratio printed: realtime send to 5 receivers, a feed page, a user GET, a
1,000-user import and the 10,000-receiver batch. The stored data is written straight
into the services' collections with the services' own document mappers (as a restore
would), so that seeding takes minutes, not hours. Writes ``bench/results/scale.json``.

``BENCH_SEED_USERS`` / ``BENCH_SEED_FEED`` change the seed; ``BENCH_SCALE`` shrinks the
scenarios (and the seed) as for ``make bench``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from clarion_directory.users.domain import User
from clarion_directory.users.mongo import COLLECTION as USERS
from clarion_directory.users.mongo import doc_id
from clarion_directory.users.mongo import to_document as user_document
from clarion_dispatcher.feed.models import FeedItem
from clarion_dispatcher.feed.mongo import COLLECTION as FEED
from clarion_dispatcher.feed.mongo import to_document as feed_document
from clarion_shared.settings import InfraSettings

from .scenarios import (
    BENCH_DB,
    SCALE,
    Row,
    batch,
    bench_stack,
    feed_page,
    import_users,
    n,
    realtime,
    send_body,
    setup,
    table,
    user_get,
    write_report,
)

SEED_USERS = int(os.environ.get("BENCH_SEED_USERS", str(int(1_000_000 * SCALE))))
SEED_FEED = int(os.environ.get("BENCH_SEED_FEED", str(int(1_000_000 * SCALE))))
SEED_APPS = 20
ITEMS_PER_USER = 10
INSERT_BATCH = 1000
INSERTERS = 4


async def measure(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    uids: list[str],
    feed_uids: list[str],
    settings: InfraSettings,
    tag: str,
) -> list[Row]:
    rows: list[Row] = []
    scenarios: list[Callable[[], Awaitable[Row]]] = [
        lambda: realtime(http, auth, uids, n(200), 5),
        lambda: feed_page(http, auth, feed_uids, n(200)),
        lambda: user_get(http, auth, uids, n(200)),
        lambda: import_users(http, auth, 3, tag),
        lambda: batch(http, auth, uids, settings),
    ]
    for scenario in scenarios:
        rows.append(await scenario())
        print(f"[{tag}] " + table(rows[-1:]).splitlines()[-1], flush=True)
    return rows


async def feed_readers(http: httpx.AsyncClient, auth: dict[str, str]) -> list[str]:
    """50 users with 10 feed items each, whom no other scenario sends to: both runs read
    the same feeds, so the feed page compares like with like."""
    readers = [f"reader-{i:02d}" for i in range(50)]
    imported = await http.post(
        "/v3/users/import",
        json={"users": [{"uid": uid, "name": uid} for uid in readers]},
        headers=auth,
    )
    assert imported.raise_for_status().json()["data"]["created"] == len(readers), imported.text
    for item in range(10):
        for start in range(0, len(readers), 10):
            response = await http.post(
                "/v3/campaigns/notifications/messages",
                json=send_body(readers[start : start + 10], f"feed-{item}"),
                headers=auth,
            )
            sent = response.raise_for_status().json()["data"]["receivers"]
            assert all(r["status"] == "sent" for r in sent), sent
    return readers


def seed_users(count: int, at: int) -> Iterator[dict[str, Any]]:
    for i in range(count):
        app_id = f"seed-app-{i % SEED_APPS:02d}"
        uid = f"seed-{i:07d}"
        user = User(
            app_id=app_id,
            uid=uid,
            name=f"Seeded user {i}",
            metadata={"@private": {"email": f"{uid}@example.test"}, "plan": "free"},
            tags=["seeded"],
            created_at=at - count + i,
            updated_at=at,
        )
        yield {"_id": doc_id(app_id, uid), **user_document(user)}


def seed_feed(count: int, at: int) -> Iterator[dict[str, Any]]:
    for i in range(count):
        owner_index = i // ITEMS_PER_USER
        app_id = f"seed-app-{owner_index % SEED_APPS:02d}"
        uid = f"seed-{owner_index:07d}"
        item_id = f"seed-item-{i:08d}"
        item = FeedItem(
            id=item_id,
            app_id=app_id,
            owner=f"{app_id}:{uid}",
            receiver=uid,
            send_id=f"seed-send-{i % 5000}",
            mode="batch",
            notification_id=item_id,
            batch_id=f"seed-send-{i % 5000}",
            channel_id="seed-channel",
            template_id="seed-template",
            template_version=1,
            content={"title": f"Hello {uid}", "body": f"Seeded item {i}"},
            sent_at=at - count + i,
        )
        yield {"_id": item_id, **feed_document(item)}


async def insert_all(
    client: AsyncMongoClient[dict[str, Any]], db: str, collection: str, docs: Iterator[Any]
) -> None:
    col = client[db][collection]
    lock = asyncio.Lock()

    async def inserter() -> None:
        while True:
            async with lock:
                chunk = [doc for _, doc in zip(range(INSERT_BATCH), docs, strict=False)]
            if not chunk:
                return
            await col.insert_many(chunk, ordered=False)

    await asyncio.gather(*(inserter() for _ in range(INSERTERS)))


async def seed(settings: InfraSettings) -> dict[str, float]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url)
    at = int(time.time())
    took: dict[str, float] = {}
    try:
        for name, db, collection, docs in (
            ("users", f"{BENCH_DB}_directory", USERS, seed_users(SEED_USERS, at)),
            ("feed_items", f"{BENCH_DB}_dispatcher", FEED, seed_feed(SEED_FEED, at)),
        ):
            started = time.perf_counter()
            await insert_all(client, db, collection, docs)
            took[name] = round(time.perf_counter() - started, 1)
            print(f"seeded {name} in {took[name]} s", flush=True)
    finally:
        await client.close()
    return took


def ratios(empty: list[Row], full: list[Row]) -> list[dict[str, Any]]:
    """Seeded / empty, on the median latency (the batch: its duration)."""
    out: list[dict[str, Any]] = []
    for before, after in zip(empty, full, strict=True):
        metric = "seconds" if before.p50_ms is None else "p50_ms"
        a = getattr(before, metric)
        b = getattr(after, metric)
        out.append(
            {
                "scenario": before.scenario,
                "metric": metric,
                "empty": round(a, 2),
                "seeded": round(b, 2),
                "ratio": round(b / a, 2) if a else None,
            }
        )
    return out


def ratio_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | metric | empty | seeded | ratio |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['scenario']} | {r['metric']} | {r['empty']} | {r['seeded']} | {r['ratio']} |"
        for r in rows
    ]
    return "\n".join(lines)


async def run(settings: InfraSettings, gateway_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=300) as http:
        auth, uids = await setup(http, n(10_000))
        await realtime(http, auth, uids, 10, 1)  # warm-up
        feed_uids = await feed_readers(http, auth)
        empty = await measure(http, auth, uids, feed_uids, settings, "empty")
        seeded_in = await seed(settings)
        full = await measure(http, auth, uids, feed_uids, settings, "seeded")
    return {"empty": empty, "full": full, "seeded_in_s": seeded_in}


def main() -> None:
    settings = InfraSettings()
    with bench_stack(settings) as stack:
        result = asyncio.run(run(settings, stack.gateway_url))
    compared = ratios(result["empty"], result["full"])
    write_report(
        "scale",
        result["empty"] + result["full"],
        seed={"users": SEED_USERS, "feed_items": SEED_FEED, "apps": SEED_APPS},
        seeded_in_s=result["seeded_in_s"],
        ratios=compared,
    )
    print(ratio_table(compared))


if __name__ == "__main__":
    main()
