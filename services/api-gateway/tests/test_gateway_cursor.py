"""Cursor pages on the gateway's own lists (templates, categories, channels), the feed
list's parameters at the edge, feed engagements, and the template category a send
carries to its feed items."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from clarion_gateway.testing import AUTH, DEV_APP, Harness

TEMPLATES = "/v3/campaigns/templates"
CATEGORIES = f"{TEMPLATES}/categories"
CHANNELS = "/v3/campaigns/channels"
FEED = "/v3/campaigns/notification-feed"


async def _walk(harness: Harness, path: str, **params: Any) -> tuple[list[str], list[bool]]:
    """Every page of a cursor walk: the ids seen, and each answer's hasMore."""
    seen: list[str] = []
    more: list[bool] = []
    cursor: dict[str, Any] = {}
    while True:
        response = await harness.client.get(path, params={**params, **cursor}, headers=AUTH)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"data", "meta"}
        assert set(body["meta"]) == {"cursor"}
        seen += [item["id"] for item in body["data"]]
        more.append(body["meta"]["cursor"]["hasMore"])
        if body["meta"]["cursor"]["next"] is None:
            return seen, more
        cursor = body["meta"]["cursor"]["next"]


async def _templates(harness: Harness, *names: str) -> list[str]:
    return [(await harness.create_template(name=name))["templateId"] for name in names]


async def test_templates_walk_by_name_and_back(harness: Harness) -> None:
    await _templates(harness, "delta", "Alpha", "charlie", "bravo", "echo")

    forward, more = await _walk(harness, TEMPLATES, sort="name", order="asc", limit=2)
    assert forward == ["alpha", "bravo", "charlie", "delta", "echo"]
    assert more == [True, True, False]

    back = await harness.client.get(
        TEMPLATES,
        params={
            "sort": "name",
            "order": "asc",
            "affix": "prepend",
            "limit": 2,
            "name": "delta",
            "id": "delta",
        },
        headers=AUTH,
    )
    body = back.json()
    assert [t["id"] for t in body["data"]] == ["bravo", "charlie"]
    assert body["meta"]["cursor"] == {"hasMore": True, "next": {"name": "bravo", "id": "bravo"}}


async def test_templates_cursor_pages_keep_the_filters_and_tie_break_on_id(
    harness: Harness,
) -> None:
    ids = await _templates(harness, "one", "two", "three", "four")
    # Created within the same second or two: equal updatedAt values go by id.
    everything, _ = await _walk(harness, TEMPLATES, limit=3)
    assert sorted(everything) == sorted(ids)
    assert len(everything) == len(set(everything))
    approved, _ = await _walk(harness, TEMPLATES, limit=1, status="approved", search="t")
    assert sorted(approved) == ["three", "two"]

    pages = await harness.client.get(TEMPLATES, params={"page": 1, "perPage": 3}, headers=AUTH)
    assert pages.json()["meta"]["pagination"]["total"] == 4  # page mode stays the default


async def test_categories_walk_all_seven_once_by_creation_time_then_id(harness: Harness) -> None:
    seen, more = await _walk(harness, CATEGORIES, sort="createdAt", order="asc", limit=3)
    assert seen == sorted(seen)  # the seven share one createdAt: the id orders them
    assert len(seen) == 7
    assert more == [True, True, False]
    response = await harness.client.get(CATEGORIES, params={"limit": 1}, headers=AUTH)
    body = response.json()
    first = body["data"][0]
    assert body["meta"]["cursor"]["next"] == {"updatedAt": first["updatedAt"], "id": first["id"]}


async def test_channels_walk_by_type(harness: Harness) -> None:
    await harness.create_channel(name="Mail", type="email", channelId="mail")
    await harness.create_channel(name="Feed", channelId="feed")
    await harness.create_channel(name="Texts", type="sms", channelId="texts")

    seen, _ = await _walk(harness, CHANNELS, sort="channelType", order="asc", limit=1)
    assert seen == ["mail", "feed", "texts"]  # email < in_app < sms
    second = await harness.client.get(
        CHANNELS,
        params={"sort": "channelType", "channelType": "email", "id": "mail", "limit": 5},
        headers=AUTH,
    )
    assert [c["id"] for c in second.json()["data"]] == []  # desc: nothing after email
    bad_type = await harness.client.get(
        CHANNELS, params={"sort": "channelType", "channelType": "fax", "id": "x"}, headers=AUTH
    )
    assert bad_type.status_code == 400


@pytest.mark.parametrize("path", [TEMPLATES, CATEGORIES, CHANNELS])
@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"page": 2, "limit": 5}, ["page", "limit"]),
        ({"perPage": 5, "affix": "append"}, ["perPage", "affix"]),
        ({"id": "x"}, ["updatedAt"]),
        ({"updatedAt": 5}, ["id"]),
        ({"sort": "createdAt", "updatedAt": 5, "id": "x"}, ["updatedAt"]),
        ({"limit": 0}, None),
        ({"limit": 101}, None),
        ({"sort": "sentAt"}, None),
        ({"order": "sideways"}, None),
        ({"affix": "middle"}, None),
        ({"updatedAt": -1, "id": "x"}, None),
    ],
)
async def test_paging_parameters_that_do_not_go_together_are_400(
    harness: Harness, path: str, params: dict[str, Any], fields: list[str] | None
) -> None:
    response = await harness.client.get(path, params=params, headers=AUTH)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "ERR_VALIDATION"
    if fields is not None:
        assert [d["field"] for d in error["details"]] == fields


# ---------------------------------------------------------------- the feed, proxied


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"data": {"seen": request.url.path}})


async def test_the_feed_list_passes_its_query_on_as_sent(harness: Harness) -> None:
    harness.peer = _ok
    query = "limit=2&sentAt=1700000000&id=fi_1&tags=a,b&tagMatch=all&dateFrom=1.5"
    response = await harness.client.get(f"{FEED}?{query}", headers={**AUTH, "onbehalfof": "u1"})
    assert response.status_code == 200
    forwarded = harness.peer_requests[-1]
    assert forwarded.url.path == f"/internal/apps/{DEV_APP}/feed/u1"
    assert forwarded.url.query.decode() == query


@pytest.mark.parametrize(
    "query", ["limit=0", "affix=middle", "readState=maybe", "dateTo=nan", "sort=updatedAt"]
)
async def test_a_bad_feed_parameter_is_400_at_the_edge(harness: Harness, query: str) -> None:
    harness.peer = _ok
    response = await harness.client.get(f"{FEED}?{query}", headers={**AUTH, "onbehalfof": "u1"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ERR_VALIDATION"
    assert harness.peer_requests == []


async def test_receiver_names_the_feed_only_without_onbehalfof(harness: Harness) -> None:
    harness.peer = _ok
    admin = await harness.client.get(f"{FEED}?receiver=bob", headers=AUTH)
    scoped = await harness.client.get(f"{FEED}?receiver=bob", headers={**AUTH, "onbehalfof": "u1"})
    invalid = await harness.client.get(f"{FEED}?receiver=a%20b", headers=AUTH)
    other_route = await harness.client.get(f"{FEED}/unread-count?receiver=bob", headers=AUTH)

    assert (admin.status_code, scoped.status_code) == (200, 200)
    feeds = [r.url.path for r in harness.peer_requests if "/feed/" in r.url.path]
    assert feeds == [f"/internal/apps/{DEV_APP}/feed/bob", f"/internal/apps/{DEV_APP}/feed/u1"]
    assert invalid.status_code == 400
    assert invalid.json()["error"]["details"] == [{"field": "receiver", "message": "invalid uid"}]
    assert other_route.status_code == 400  # only the list takes receiver


async def test_an_engagement_is_forwarded_with_its_body(harness: Harness) -> None:
    harness.peer = _ok
    response = await harness.client.post(
        f"{FEED}/fi_1/engagement", json={"topic": "clicked"}, headers={**AUTH, "onbehalfof": "u1"}
    )
    assert response.status_code == 200
    forwarded = harness.peer_requests[-1]
    assert forwarded.url.path == f"/internal/apps/{DEV_APP}/feed/u1/fi_1/engagement"
    assert forwarded.content == b'{"topic":"clicked"}'


async def test_a_send_carries_the_templates_category(harness: Harness) -> None:
    await harness.create_channel(name="Feed", channelId="feed")
    await harness.create_template(templateId="order", templateCategory="Alerts")
    response = await harness.client.post(
        "/v3/campaigns/notifications/messages",
        json={"templateId": "order", "receivers": ["u1"]},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    [command] = harness.commands.sends
    assert command.template.template_category == "Alerts"
