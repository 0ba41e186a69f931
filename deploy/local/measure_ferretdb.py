#!/usr/bin/env python3
"""Rough FerretDB (PostgreSQL backend) performance check for Clarion-like data.

    MONGODB_URL=mongodb://127.0.0.1:27018/ python deploy/local/measure_ferretdb.py [N]

Inserts N (default 100000) small documents
    {_id: str, app_id: 5 distinct, role: 10 distinct, created_at: int}
into clarion_measure.docs, then times (median of 7 runs after one warm-up, ms):
  - find({app_id, role}).sort(created_at).limit(20)   filtered + sorted page
  - find_one({_id})                                    primary-key lookup
  - find({created_at: {$in: [20 values]}})             $in on created_at
  - find({created_at: {$gte, $lt}})                    range on created_at
first without secondary indexes, then with indexes on (app_id, role, created_at)
and (created_at). Also prints FerretDB's explain(): which parts (filter, sort,
limit) are pushed down to PostgreSQL and the PostgreSQL plan. The database
is dropped at the end. Needs pymongo.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

from pymongo import ASCENDING, MongoClient

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
RUNS = 7
APPS = [f"a{i}" for i in range(5)]
ROLES = [f"r{i}" for i in range(10)]


def timed(fn, runs: int = RUNS) -> tuple[float, object]:
    samples = []
    result = fn()  # warm-up, not counted
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples), result


def explain_flags(db, coll: str, flt: dict, sort: dict | None = None, limit: int = 0) -> str:
    cmd: dict = {"find": coll, "filter": flt}
    if sort:
        cmd["sort"] = sort
    if limit:
        cmd["limit"] = limit
    try:
        ex = db.command("explain", cmd)
    except Exception as exc:
        return f"explain failed: {exc}"
    keys = ("filterPushdown", "sortPushdown", "limitPushdown")
    out = ", ".join(f"{k.replace('Pushdown', '')}={ex[k]}" for k in keys if k in ex)
    plan = (ex.get("queryPlanner") or {}).get("Plan") or {}
    if plan:
        node = plan.get("Node Type")
        child = (plan.get("Plans") or [{}])[0].get("Node Type")
        out += f"; postgres plan: {node}" + (f" > {child}" if child else "")
    return out or "(no pushdown info)"


def queries(db, coll):
    lo = N // 2
    in_values = list(range(lo, lo + 20 * 97, 97))
    return [
        (
            'find({app_id:"a1", role:"r3"}).sort(created_at).limit(20)',
            lambda: list(
                coll.find({"app_id": "a1", "role": "r3"}).sort("created_at", ASCENDING).limit(20)
            ),
            ({"app_id": "a1", "role": "r3"}, {"created_at": 1}, 20),
        ),
        (
            'find_one({_id:"d0054321"})',
            lambda: coll.find_one({"_id": f"d{min(54321, N - 1):07d}"}),
            ({"_id": f"d{min(54321, N - 1):07d}"}, None, 0),
        ),
        (
            "find({created_at:{$in:[20 values]}})",
            lambda: list(coll.find({"created_at": {"$in": in_values}})),
            ({"created_at": {"$in": in_values}}, None, 0),
        ),
        (
            "find({created_at:{$gte:x, $lt:x+100}})",
            lambda: list(coll.find({"created_at": {"$gte": lo, "$lt": lo + 100}})),
            ({"created_at": {"$gte": lo, "$lt": lo + 100}}, None, 0),
        ),
    ]


def run_queries(db, coll, label: str) -> None:
    print(f"\n-- queries ({label}), median of {RUNS} runs")
    for name, fn, (flt, sort, limit) in queries(db, coll):
        ms, res = timed(fn)
        n = len(res) if isinstance(res, list) else (1 if res else 0)
        print(f"{ms:9.1f} ms  {n:4d} docs  {name}")
        print(f"{'':22}pushdown: {explain_flags(db, coll.name, flt, sort, limit)}")


def main() -> int:
    url = os.environ.get("MONGODB_URL")
    if not url:
        print("MONGODB_URL is not set", file=sys.stderr)
        return 2
    client = MongoClient(url, serverSelectionTimeoutMS=10000)
    db = client["clarion_measure"]
    client.drop_database(db.name)
    coll = db["docs"]
    info = client.admin.command("buildInfo")
    ping_ms, _ = timed(lambda: client.admin.command("ping"), 20)
    print(
        f"server: {url} version {info.get('version')} ferretdb {info.get('ferretdbVersion', '-')}"
    )
    print(f"ping round trip: {ping_ms:.2f} ms")

    docs = [
        {"_id": f"d{i:07d}", "app_id": APPS[i % 5], "role": ROLES[(i // 5) % 10], "created_at": i}
        for i in range(N)
    ]
    t = time.perf_counter()
    batch = 1000
    for i in range(0, N, batch):
        coll.insert_many(docs[i : i + batch], ordered=False)
    dt = time.perf_counter() - t
    print(f"insert_many: {N} docs in {dt:.1f} s ({N / dt:,.0f} docs/s, batches of {batch})")
    assert coll.count_documents({}) == N

    run_queries(db, coll, "no secondary index")

    t = time.perf_counter()
    coll.create_index([("app_id", ASCENDING), ("role", ASCENDING), ("created_at", ASCENDING)])
    coll.create_index([("created_at", ASCENDING)])
    print(f"\ncreate_index x2: {time.perf_counter() - t:.1f} s")
    run_queries(db, coll, "with indexes (app_id,role,created_at) and (created_at)")

    client.drop_database(db.name)
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
