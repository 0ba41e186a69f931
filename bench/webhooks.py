"""Webhook deliveries per second (issue 9): a 10,000-receiver batch with
``after_feed_item_sent`` subscribed, delivered to a local receiver running as a process
of its own (``clarion_devtools.webhook_receiver``: it only counts, so it is not what is
measured), then the same batch with a second endpoint beside it that hangs 10 s on every
call, to measure what a hanging endpoint costs a healthy one.

Rows:
- ``webhooks-10k``: deliveries per second, from the receiver's first delivery to its
  last (``seconds``), and ``send_to_last_s``: from the send to the last delivery;
- ``webhooks-10k-beside-hanging``: the same with the hanging neighbour;
  ``delay_vs_alone_s`` is the difference of the two ``send_to_last_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx

from clarion_devtools.s3server import free_port

from .scenarios import Row, send_body

DEADLINE_S = 600
HANG_S = 10


@contextlib.contextmanager
def receiver_process(hang_path: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clarion_devtools.webhook_receiver",
            "--port",
            str(port),
            "--hang-path",
            hang_path,
            "--hang-s",
            str(HANG_S),
        ]
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


class WebhookBench:
    def __init__(self, http: httpx.AsyncClient, auth: dict[str, str], uids: list[str]) -> None:
        self._http = http
        self._auth = auth
        self._uids = uids

    async def _stats(self, base: str, since: float = 0.0) -> dict[str, Any]:
        """What the receiver's healthy endpoint got since ``since``."""
        params = {"path": "/hook", "since": str(since)}
        async with httpx.AsyncClient() as http:
            for _ in range(100):
                with contextlib.suppress(httpx.TransportError):
                    stats: dict[str, Any] = (await http.get(f"{base}/stats", params=params)).json()
                    return stats
                await asyncio.sleep(0.1)
        raise RuntimeError("the receiver does not answer")

    async def _register(self, url: str) -> str:
        created = await self._http.post(
            "/v3/webhooks",
            json={"name": "bench", "webhookURL": url, "triggers": ["after_feed_item_sent"]},
            headers=self._auth,
        )
        hook_id: str = created.raise_for_status().json()["data"]["id"]
        return hook_id

    async def _until(self, base: str, since: float, count: int) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            stats = await self._stats(base, since)
            if stats["unique"] >= count:
                return stats
            await asyncio.sleep(0.1)
        raise RuntimeError(f"webhooks: not {count} deliveries in {DEADLINE_S} s")

    async def _measure(self, base: str, name: str, warmed: int) -> Row:
        started = time.time()
        sent = await self._http.post(
            "/v3/campaigns/notifications/messages",
            json=send_body(self._uids, name),
            headers=self._auth,
        )
        sent.raise_for_status()
        stats = await self._until(base, started, len(self._uids))
        # The receiver's clock (the same machine's): this batch's first delivery to its last.
        spread = stats["last_at"] - stats["first_at"]
        return Row(
            name,
            len(self._uids),
            len(self._uids),
            spread,
            extra={
                "send_to_last_s": round(stats["last_at"] - started, 2),
                "first_delivery_s": round(stats["first_at"] - started, 2),
                "receiver_requests": stats["count"],
                "warm_up": warmed,
            },
        )

    async def run(self) -> list[Row]:
        with receiver_process("/hang") as base:
            await self._stats(base)
            await self._register(f"{base}/hook")
            # Warm-up: until the emitter knows the endpoint, a small send at a time.
            warm = self._uids[:20]
            deadline = time.monotonic() + 60
            while (await self._stats(base))["unique"] == 0 and time.monotonic() < deadline:
                await self._http.post(
                    "/v3/campaigns/notifications/messages",
                    json=send_body(warm, "warm"),
                    headers=self._auth,
                )
                await asyncio.sleep(1)
            await asyncio.sleep(2)  # let the warm-up's deliveries finish
            alone = await self._measure(base, f"webhooks-{len(self._uids)}", len(warm))
            hanging = await self._register(f"{base}/hang")
            await asyncio.sleep(2)  # every emitter process learns it
            beside = await self._measure(
                base, f"webhooks-{len(self._uids)}-beside-hanging", len(warm)
            )
            beside.extra["delay_vs_alone_s"] = round(
                beside.extra["send_to_last_s"] - alone.extra["send_to_last_s"], 2
            )
            await self._http.delete(f"/v3/webhooks/{hanging}", headers=self._auth)
        return [alone, beside]
