"""Analytics at the gateway: each operation passed on to the dispatcher with the query
as the client sent it; bad parameters the gateway can see are 400 before it."""

from __future__ import annotations

import httpx
import pytest

from clarion_gateway.testing import AUTH, DEV_APP, Harness

ANALYTICS = "/v3/campaigns/analytics"


async def test_each_analytics_operation_goes_to_the_dispatcher(harness: Harness) -> None:
    harness.peer = lambda request: httpx.Response(200, json={"data": {"seen": request.url.path}})
    query = "dimension=campaign&dimensionId=c1&period=daily&startDate=1&endDate=2&limit=5"
    for path in ["overview", "campaigns/c 1", "templates/tpl", "channels", "users/u-1"]:
        response = await harness.client.get(f"{ANALYTICS}/{path}?{query}", headers=AUTH)
        assert response.status_code == 200, response.text
    assert [(r.method, r.url.raw_path) for r in harness.peer_requests] == [
        ("GET", f"/internal/apps/{DEV_APP}/analytics/{path}?{query}".encode())
        for path in ["overview", "campaigns/c%201", "templates/tpl", "channels", "users/u-1"]
    ]


async def test_the_dispatchers_400_is_passed_on(harness: Harness) -> None:
    harness.peer = lambda request: httpx.Response(
        400, json={"error": {"code": "ERR_VALIDATION", "message": "startDate is after endDate."}}
    )
    response = await harness.client.get(f"{ANALYTICS}/overview?startDate=5&endDate=1", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ERR_VALIDATION"


@pytest.mark.parametrize("query", ["period=yearly", "limit=0", "limit=101", "dimension=user"])
async def test_a_bad_query_is_400_before_the_dispatcher(harness: Harness, query: str) -> None:
    response = await harness.client.get(f"{ANALYTICS}/channels?{query}", headers=AUTH)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "ERR_VALIDATION"
    assert harness.peer_requests == []


async def test_analytics_needs_the_apps_key(harness: Harness) -> None:
    response = await harness.client.get(f"{ANALYTICS}/overview", headers={"apikey": "wrong"})
    assert response.status_code == 401
    assert harness.peer_requests == []


async def test_the_analytics_answer_is_documented(harness: Harness) -> None:
    spec = (await harness.client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert set(schemas["AnalyticsPublic"]["properties"]) == {
        "period",
        "startDate",
        "endDate",
        "totals",
        "rates",
        "series",
        "top",
    }
    overview = spec["paths"][f"{ANALYTICS}/overview"]["get"]
    assert {p["name"] for p in overview["parameters"]} >= {
        "dimension",
        "dimensionId",
        "period",
        "startDate",
        "endDate",
        "limit",
    }
    assert f"{ANALYTICS}/users/{{uid}}" in spec["paths"]
