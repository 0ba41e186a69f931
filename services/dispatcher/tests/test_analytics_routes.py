"""Analytics over the dispatcher's internal HTTP API (in-memory rollups): the answer's
envelope, its 400s in the error envelope, and the counter wired to the status topic
(FastStream's in-memory broker)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from clarion_dispatcher.app import Adapters, Settings, compose
from clarion_dispatcher.testing import InMemoryAnalytics
from clarion_shared import kafka
from clarion_shared.contracts.status import FeedItemRead, FeedItemSent
from clarion_shared.http import internal_headers
from clarion_shared.ids import now
from clarion_shared.topics import Topics

SETTINGS = Settings(topic_prefix="unit.", group_id="dispatcher-test")
APP = "app1"
BASE = f"/internal/apps/{APP}/analytics"
ITEM = {"receiver": "u1", "templateId": "tpl", "channelId": "feed", "channelType": "in_app"}


def event(kind: type[FeedItemSent] | type[FeedItemRead], event_id: str, at: int) -> FeedItemSent:
    return kind(  # type: ignore[return-value]
        event_id=event_id, app_id=APP, send_id="s1", mode="batch", occurred_at=at, feed_item=ITEM
    )


@pytest.fixture
async def api() -> AsyncIterator[tuple[httpx.AsyncClient, Adapters]]:
    adapters = replace(Adapters.connect(SETTINGS), analytics=InMemoryAnalytics())
    app = compose(SETTINGS, adapters)  # ASGITransport runs no lifespan
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://dispatcher",
        headers=internal_headers(SETTINGS.internal_token),
    ) as client:
        yield client, adapters


async def test_status_events_are_counted_by_the_counter_and_answered(
    api: tuple[httpx.AsyncClient, Adapters],
) -> None:
    client, adapters = api
    at = now()
    async with TestKafkaBroker(adapters.broker) as broker:
        status = Topics(SETTINGS.topic_prefix).status
        for record in [
            event(FeedItemSent, "e1", at),
            event(FeedItemSent, "e1", at),  # republished
            event(FeedItemRead, "e2", at),
        ]:
            await kafka.publish(broker, status, record, "s1")

    response = await client.get(f"{BASE}/overview", params={"period": "hourly"})

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["totals"] == {"sent": 1, "delivered": 0, "read": 1, "engaged": 0, "failed": 0}
    assert data["rates"] == {"delivery": 0.0, "read": 1.0, "engagement": 0.0}
    assert data["period"] == "hour"
    assert len(data["series"]) == 24
    assert data["series"][-1] == {
        "bucket": at - at % 3600,
        "sent": 1,
        "delivered": 0,
        "read": 1,
        "engaged": 0,
        "failed": 0,
    }
    assert data["top"] == [
        {
            "dimension": "template",
            "id": "tpl",
            "sent": 1,
            "delivered": 0,
            "read": 1,
            "engaged": 0,
            "failed": 0,
        }
    ]
    template = (await client.get(f"{BASE}/templates/tpl")).json()["data"]
    assert template["totals"]["sent"] == 1
    assert "top" not in template
    user = (await client.get(f"{BASE}/users/u1", params={"period": "week"})).json()["data"]
    assert user["totals"]["read"] == 1
    channels = (await client.get(f"{BASE}/channels")).json()["data"]
    assert [(t["id"], t["channelType"]) for t in channels["top"]] == [("feed", "in_app")]
    other = (await client.get("/internal/apps/other/analytics/campaigns/s1")).json()["data"]
    assert other["totals"]["sent"] == 0


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("overview", "startDate=1700000100&endDate=1700000000", "startDate"),
        ("overview", "period=yearly", "period"),
        ("overview", "startDate=0&period=hour", "startDate"),
        ("channels", "limit=0", "limit"),
        ("channels", "limit=101", "limit"),
        ("campaigns/c1", "startDate=last%20week", "startDate"),
        ("templates/t1", "endDate=99999999999999", "endDate"),
        ("users/u1", "period=hour", "period"),
        ("overview", "dimension=user", "dimension"),
    ],
)
async def test_bad_parameters_are_400_in_the_error_envelope(
    api: tuple[httpx.AsyncClient, Adapters], path: str, query: str, field: str
) -> None:
    client, _ = api
    response = await client.get(f"{BASE}/{path}?{query}")
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "ERR_VALIDATION"
    assert field in str(error["details"])


async def test_cometchats_parameters_are_accepted_and_unknown_ones_ignored(
    api: tuple[httpx.AsyncClient, Adapters],
) -> None:
    client, _ = api
    response = await client.get(
        f"{BASE}/overview",
        params={
            "dimension": "campaign",
            "dimensionId": "c1",
            "period": "daily",
            "startDate": "2024-01-01T00:00:00Z",
            "endDate": "2024-01-31",
            "limit": "50",
            "dataType": "x",
        },
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["period"], len(data["series"]), data["top"]) == ("day", 31, [])


async def test_analytics_needs_the_internal_token(
    api: tuple[httpx.AsyncClient, Adapters],
) -> None:
    client, _ = api
    response = await client.get(f"{BASE}/overview", headers={"x-clarion-internal-token": "no"})
    assert response.status_code == 401
