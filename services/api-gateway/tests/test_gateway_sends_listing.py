"""The sends listing at the edge: checked, passed on to the dispatcher, documented."""

from __future__ import annotations

import httpx

from clarion_gateway.testing import AUTH, DEV_APP, Harness


def _page(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith(".csv"):
        return httpx.Response(
            200, text="uid,channel_type\r\nalice,in_app\r\n", headers={"content-type": "text/csv"}
        )
    meta = {"total": 0, "count": 0, "per_page": 20, "current_page": 1, "total_pages": 1}
    return httpx.Response(200, json={"data": [], "meta": {"pagination": meta}})


async def test_the_list_is_passed_on_with_its_query(harness: Harness) -> None:
    harness.peer = _page

    response = await harness.client.get(
        "/v3/campaigns/notifications?type=batch&status=completed&templateId=t1&since=5&perPage=50",
        headers=AUTH,
    )

    assert response.status_code == 200, response.text
    [request] = harness.peer_requests
    assert request.url.path == f"/internal/apps/{DEV_APP}/sends"
    assert request.url.params["type"] == "batch"
    assert request.url.params["perPage"] == "50"


async def test_bad_filters_are_400_and_never_reach_the_dispatcher(harness: Harness) -> None:
    harness.peer = _page
    for query in ("perPage=101", "type=email", "status=sent", "since=-1"):
        response = await harness.client.get(f"/v3/campaigns/notifications?{query}", headers=AUTH)
        assert response.status_code == 400, query
    assert harness.peer_requests == []
    anonymous = await harness.client.get("/v3/campaigns/notifications")
    assert anonymous.status_code == 401


async def test_receivers_and_their_csv_are_passed_on(harness: Harness) -> None:
    harness.peer = _page

    listed = await harness.client.get(
        "/v3/campaigns/notifications/bat_1/receivers?status=failed&uid=ghost", headers=AUTH
    )
    exported = await harness.client.get(
        "/v3/campaigns/notifications/bat_1/receivers.csv?status=failed", headers=AUTH
    )

    assert (listed.status_code, exported.status_code) == (200, 200)
    assert [r.url.path for r in harness.peer_requests] == [
        f"/internal/apps/{DEV_APP}/sends/bat_1/receivers",
        f"/internal/apps/{DEV_APP}/sends/bat_1/receivers.csv",
    ]
    assert exported.text.startswith("uid,channel_type")
    assert exported.headers["content-disposition"] == 'attachment; filename="bat_1.csv"'


async def test_a_send_the_dispatcher_does_not_know_is_its_404(harness: Harness) -> None:
    response = await harness.client.get("/v3/campaigns/notifications/ntf_x/receivers", headers=AUTH)
    assert response.status_code == 404


async def test_the_routes_are_documented(harness: Harness) -> None:
    paths = (await harness.client.get("/openapi.json")).json()["paths"]
    listed = paths["/v3/campaigns/notifications"]["get"]
    assert {p["name"] for p in listed["parameters"]} >= {"type", "status", "templateId", "since"}
    assert "text/csv" in str(paths["/v3/campaigns/notifications/{send_id}/receivers.csv"])
    events = paths["/v3/campaigns/campaigns/{campaign_id}/events"]["get"]["responses"]["200"]
    assert "text/event-stream" in events["content"]
    assert "/v3/campaigns/notifications/batches/{batch_id}/events" in paths
