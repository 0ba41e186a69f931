"""The benchmark's campaign scenarios (issue 8): a CSV audience of 10,000 existing users
imported the CometChat way, then that campaign sent until it is ``completed``.

- campaign-csv-import-10k: from ``POST .../recipients/upload-url`` through the ``PUT``
  of the file (without apikey) and ``POST .../import-csv {s3Key}`` until
  ``GET .../import-status`` says ``completed`` (polled every ``POLL_S``);
- campaign-send-10k: from ``POST .../send`` until the campaign's ``BatchCompleted``
  (``mode`` campaign) is read from ``clarion.status``, i.e. the dispatcher decided it
  final; ``confirmed_s``: until ``GET`` on the campaign shows it ``completed`` with every
  recipient sent (the gateway's read model of the same event).

The send needs an imported campaign: run alone (``BENCH_ONLY=campaign-send-10k``), it
imports one first, untimed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from clarion_shared.contracts.status import BatchCompleted, status_event_adapter
from clarion_shared.ids import new_id
from clarion_shared.settings import InfraSettings

from .scenarios import BENCH_STATUS, Row

CAMPAIGNS = "/v3/campaigns/campaigns"
POLL_S = 0.01  # import-status and the confirming GET: the measure's resolution
DEADLINE_S = 600


def csv_of(uids: list[str]) -> bytes:
    """The audience file: ``user_id`` and the ``name`` the bench template requires."""
    rows = "".join(f"{uid},Name {uid}\n" for uid in uids)
    return f"user_id,name\n{rows}".encode()


@dataclass
class CampaignBench:
    """Both scenarios on the bench's app, users and ``bench`` template (``setup``)."""

    http: httpx.AsyncClient
    auth: dict[str, str]
    uids: list[str]
    settings: InfraSettings
    imported_campaign: str | None = None  # imported, not sent yet

    async def create(self) -> str:
        created = await self.http.post(
            CAMPAIGNS,
            json={
                "name": f"bench-{new_id()}",
                "templateId": "bench",
                "templateVersion": 1,
                "variables": {"n": "campaign"},
            },
            headers=self.auth,
        )
        campaign_id: str = created.raise_for_status().json()["data"]["campaignId"]
        return campaign_id

    async def csv_import(self) -> Row:
        """Timed from the upload-url request until import-status is ``completed``."""
        campaign_id = await self.create()
        content = csv_of(self.uids)
        url = f"{CAMPAIGNS}/{campaign_id}"
        started = time.perf_counter()
        issued = await self.http.post(f"{url}/recipients/upload-url", headers=self.auth)
        upload = issued.raise_for_status().json()["data"]
        put = await self.http.put(upload["uploadUrl"], content=content)
        put.raise_for_status()
        uploaded = time.perf_counter()
        began = await self.http.post(
            f"{url}/import-csv", json={"s3Key": upload["s3Key"]}, headers=self.auth
        )
        began.raise_for_status()
        status = await self._poll(f"{url}/import-status", lambda d: d["status"] != "processing")
        elapsed = time.perf_counter() - started
        assert status["status"] == "completed", status
        assert (status["rows"], status["imported"]) == (len(self.uids), len(self.uids)), status
        self.imported_campaign = campaign_id
        return Row(
            f"campaign-csv-import-{len(self.uids)}",
            1,
            len(self.uids),
            elapsed,
            extra={
                "campaign_id": campaign_id,
                "csv_bytes": len(content),
                "upload_s": round(uploaded - started, 3),
            },
        )

    async def send(self) -> Row:
        """Timed from ``POST .../send`` until the campaign's ``BatchCompleted``."""
        if self.imported_campaign is None:
            await self.csv_import()
        campaign_id, self.imported_campaign = self.imported_campaign, None
        assert campaign_id is not None
        total = len(self.uids)
        consumer = await self._status_consumer()
        try:
            started = time.perf_counter()
            sent = await self.http.post(f"{CAMPAIGNS}/{campaign_id}/send", headers=self.auth)
            accepted_ms = (time.perf_counter() - started) * 1000
            assert sent.raise_for_status().json()["data"]["status"] == "sending", sent.text
            completed = await _completion(consumer, campaign_id)
            elapsed = time.perf_counter() - started
        finally:
            await consumer.stop()
        assert (completed.status, completed.sent) == ("completed", total), completed
        campaign = await self._poll(
            f"{CAMPAIGNS}/{campaign_id}", lambda d: d["status"] != "sending"
        )
        confirmed_s = time.perf_counter() - started
        counts = (campaign["status"], campaign["sentCount"], campaign["failedCount"])
        assert counts == ("completed", total, 0), campaign
        return Row(
            f"campaign-send-{total}",
            1,
            total,
            elapsed,
            extra={
                "campaign_id": campaign_id,
                "accepted_ms": round(accepted_ms, 1),
                "confirmed_s": round(confirmed_s, 3),
            },
        )

    async def _status_consumer(self) -> AIOKafkaConsumer:
        """A new group at the end of the bench's status topic, holding its partitions."""
        consumer = AIOKafkaConsumer(
            BENCH_STATUS,
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=f"bench-{new_id()}",
            auto_offset_reset="latest",
            enable_auto_commit=False,
            isolation_level="read_committed",  # BatchCompleted is published in a transaction
        )
        await consumer.start()
        try:
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=200)
            for tp in consumer.assignment():
                await consumer.position(tp)
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    async def _poll(self, path: str, final: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """``GET path`` every ``POLL_S`` until ``final(data)``."""
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            response = await self.http.get(path, headers=self.auth)
            data: dict[str, Any] = response.raise_for_status().json()["data"]
            if final(data):
                return data
            await asyncio.sleep(POLL_S)
        raise RuntimeError(f"{path} not final after {DEADLINE_S} s")


async def _completion(consumer: AIOKafkaConsumer, campaign_id: str) -> BatchCompleted:
    """The campaign's ``BatchCompleted``, as the consumer reads it."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        fetched = await consumer.getmany(timeout_ms=500)
        for records in fetched.values():
            for record in records:
                event = status_event_adapter.validate_json(record.value)
                if (
                    isinstance(event, BatchCompleted)
                    and event.mode == "campaign"
                    and event.send_id == campaign_id
                ):
                    return event
    raise RuntimeError(f"campaign {campaign_id} not completed after {DEADLINE_S} s")
