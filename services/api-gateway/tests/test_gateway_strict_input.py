"""Input the database cannot store is refused at the edge (issue 6, finding 3).

Each case of the finding, sent to the gateway built on fakes (unit) and on the real
database and broker (integration, where the NUL bytes and overflowing numbers used to
answer 500): a NUL or an escaped lone surrogate in a body, ``%00`` in a path id, a page
number past any real page. Each is now 400 ``ERR_VALIDATION`` naming the field, and a
proxied request never reaches the owner.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from clarion_devtools.helpers import random_ref
from clarion_gateway.app import Settings, build
from clarion_gateway.testing import ADMIN, AUTH, Harness, gateway_harness
from clarion_shared.settings import InfraSettings

SEND = "/v3/campaigns/notifications/messages"
JSON = {"content-type": "application/json"}
TEMPLATE = (
    '{"name": "%s", "channels": [{"channelType": "in_app", '
    '"content": {"title": "%s", "body": "b"}}], "variableSchema": [{"key": "name"}]}'
)


@dataclass
class Gateway:
    client: httpx.AsyncClient
    headers: dict[str, str]
    harness: Harness | None = None


async def _prepare(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """An in-app channel and an approved template ``order`` with a variable ``name``."""
    channel = await client.post(
        "/v3/campaigns/channels",
        json={"name": "Feed", "type": "in_app", "enabled": True},
        headers=headers,
    )
    assert channel.status_code == 201, channel.text
    template = await client.post(
        "/v3/campaigns/templates",
        json={
            "name": "Order",
            "templateId": "order",
            "status": "approved",
            "channels": [{"channelType": "in_app", "content": {"title": "{{name}}", "body": "b"}}],
            "variableSchema": [{"key": "name"}],
        },
        headers=headers,
    )
    assert template.status_code == 201, template.text


@pytest_asyncio.fixture
async def fake_gateway() -> AsyncIterator[Gateway]:
    async with gateway_harness() as harness:
        await _prepare(harness.client, AUTH)
        yield Gateway(harness.client, AUTH, harness)


@pytest_asyncio.fixture
async def real_gateway(
    infra_settings: InfraSettings, mongo_client: AsyncMongoClient[dict[str, Any]]
) -> AsyncIterator[Gateway]:
    """The gateway built by ``build`` on the real database and broker; its peers' URLs
    point at a closed port, so nothing here reaches another stack's services."""
    db_name = random_ref("db_gw_strict").replace("-", "_")
    closed = "http://127.0.0.1:9"
    settings = Settings(
        kafka_bootstrap_servers=infra_settings.kafka_bootstrap_servers,
        mongodb_url=infra_settings.mongodb_url,
        topic_prefix=infra_settings.topic_prefix,
        db_name=db_name,
        environment="dev",
        dev_app_id=random_ref("dev"),
        dev_api_key=random_ref("devkey"),
        realtime_timeout_s=1.0,
        dispatcher_url=closed,
        directory_url=closed,
        webhooks_url=closed,
    )
    app = build(settings)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gw", timeout=30
            ) as client,
        ):
            created = await client.post("/admin/apps", json={"name": "Strict"}, headers=ADMIN)
            assert created.status_code == 201, created.text
            headers = {"apikey": created.json()["data"]["apiKey"]}
            await _prepare(client, headers)
            yield Gateway(client, headers)
    finally:
        await mongo_client.drop_database(db_name)


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.integration)])
def gateway(request: pytest.FixtureRequest) -> Gateway:
    found: Gateway = request.getfixturevalue(f"{request.param}_gateway")
    return found


# (method, path, raw JSON body or None, admin?, the field the 400 names)
OWN_CASES = [
    ("POST", "/admin/apps", '{"name": "A\\u0000pp"}', True, "name"),
    ("POST", "/v3/campaigns/channels", '{"name": "In\\u0000app", "type": "push"}', False, "name"),
    ("POST", "/v3/campaigns/templates", TEMPLATE % ("We\\u0000lcome", "Hi"), False, "name"),
    (
        "POST",
        "/v3/campaigns/templates",
        TEMPLATE % ("Welcome", "Hi \\ud800"),
        False,
        "channels.0.content.title",
    ),
    (
        "POST",
        SEND,
        '{"templateId": "order", "receivers": ["alice"], '
        '"variables": {"alice": {"name": "\\ud800"}}}',
        False,
        "variables.alice.name",
    ),
    (
        "POST",
        SEND,
        '{"templateId": "order", "receivers": ["alice", "bob"], '
        '"variables": {"alice": {"name": "Al\\u0000ice"}, "bob": {"name": "Bob"}}}',
        False,
        "variables.alice.name",
    ),
    ("POST", SEND, '{"templateId": "order", "receivers": ["a"], "tag": "t\\u0000"}', False, "tag"),
    ("GET", "/v3/campaigns/templates/or%00der", None, False, "template_id"),
    ("PUT", "/v3/campaigns/templates/or%00der", '{"status": "approved"}', False, "template_id"),
    ("GET", "/v3/campaigns/channels/fe%00ed", None, False, "channel_id"),
    ("GET", "/v3/campaigns/notifications/ntf%00", None, False, "notification_id"),
    ("GET", "/v3/campaigns/channels?page=9223372036854775807", None, False, "page"),
    ("GET", "/v3/campaigns/templates?page=9223372036854775807", None, False, "page"),
    ("GET", "/v3/campaigns/channels?search=a%00b", None, False, "search"),
]


def _request_args(gateway: Gateway, body: str | None, admin: bool) -> dict[str, Any]:
    headers = dict(ADMIN if admin else gateway.headers)
    if body is None:
        return {"headers": headers}
    return {"headers": {**headers, **JSON}, "content": body.encode()}


def assert_refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "ERR_VALIDATION"
    assert field in [d["field"] for d in error["details"]], error


@pytest.mark.parametrize(("method", "path", "body", "admin", "field"), OWN_CASES)
async def test_unstorable_input_is_400_naming_the_field(
    gateway: Gateway, method: str, path: str, body: str | None, admin: bool, field: str
) -> None:
    response = await gateway.client.request(method, path, **_request_args(gateway, body, admin))
    assert_refused(response, field)


async def test_the_same_requests_without_the_bad_character_pass(gateway: Gateway) -> None:
    """The refusals above are about the character, not the request."""
    created = await gateway.client.post(
        "/v3/campaigns/channels", json={"name": "In-app 2", "type": "push"}, headers=gateway.headers
    )
    assert created.status_code == 201, created.text
    emoji = '{"name": "Hi \\ud83d\\ude00", "type": "sms"}'  # a valid surrogate pair
    paired = await gateway.client.post(
        "/v3/campaigns/channels", content=emoji.encode(), headers={**gateway.headers, **JSON}
    )
    assert paired.status_code == 201, paired.text
    assert paired.json()["data"]["name"] == "Hi \U0001f600"
    last_page = await gateway.client.get(
        "/v3/campaigns/channels?page=1000000", headers=gateway.headers
    )
    assert last_page.status_code == 200, last_page.text
    assert last_page.json()["data"] == []


# --------------------------------------------------------------------- proxied routes

PROXIED_CASES = [
    ("POST", "/v3/users", '{"uid": "u1", "name": "A\\u0000nn"}', "name"),
    ("PUT", "/v3/users/u1", '{"name": "A\\u0000nn"}', "name"),
    (
        "POST",
        "/v3/users/import",
        '{"users": [{"uid": "u1", "name": "A\\u0000nn"}]}',
        "users.0.name",
    ),
    (
        "POST",
        "/v3/users",
        '{"uid": "u1", "name": "Ann", "metadata": {"k": "\\udc00"}}',
        "metadata.k",
    ),
    ("POST", "/v3/users", '{"uid": "u1", "name": "Ann", "name": "Bob"}', "name"),
    ("POST", "/v3/users", '{"uid": "u1", "name": "Ann", "metadata": {"n": NaN}}', "metadata.n"),
    ("GET", "/v3/users/u%001", None, "uid"),
    ("GET", "/v3/users?searchKey=a%00", None, "searchKey"),
    ("GET", "/v3/campaigns/notification-feed/fi%00", None, "item_id"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), PROXIED_CASES)
async def test_proxied_requests_are_checked_before_they_are_forwarded(
    fake_gateway: Gateway, method: str, path: str, body: str | None, field: str
) -> None:
    harness = fake_gateway.harness
    assert harness is not None
    args = _request_args(fake_gateway, body, False)
    args["headers"]["onbehalfof"] = "u1"
    response = await fake_gateway.client.request(method, path, **args)
    assert_refused(response, field)
    assert harness.peer_requests == []


# ----------------------------------------------------------------------------- limits


def _send_10k() -> bytes:
    """The largest send the API allows: 10,000 receivers, each with its own variables."""
    uids = [f"user-{i:05d}-{random_ref('u')}" for i in range(10_000)]
    variables = {
        uid: {"name": f"Receiver number {i} with a longish display name", "order": f"#{i:08d}"}
        for i, uid in enumerate(uids)
    }
    body = {"templateId": "order", "receivers": uids, "variables": variables, "tag": "big"}
    return json.dumps(body).encode()


async def test_a_10000_receiver_send_fits_and_a_larger_body_is_413(fake_gateway: Gateway) -> None:
    headers = {**fake_gateway.headers, **JSON}
    body = _send_10k()
    assert len(body) < 8 * 1024 * 1024
    accepted = await fake_gateway.client.post(SEND, content=body, headers=headers)
    assert accepted.status_code == 200, accepted.text[:500]
    assert accepted.json()["data"]["mode"] == "batch"

    padding = " " * (8 * 1024 * 1024 + 1 - len(body))
    too_large = await fake_gateway.client.post(
        SEND, content=body + padding.encode(), headers=headers
    )
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "ERR_PAYLOAD_TOO_LARGE"


async def test_a_1000_user_import_fits_and_reaches_the_directory(fake_gateway: Gateway) -> None:
    harness = fake_gateway.harness
    assert harness is not None
    harness.peer = lambda request: httpx.Response(
        200, json={"data": {"seen": len(request.content)}}
    )
    users = [
        {
            "uid": f"user-{i:04d}",
            "name": f"User {i}",
            "avatar": f"https://example.com/avatars/{i}.png",
            "metadata": {"plan": "pro", "city": "Zürich", "score": i},
            "tags": ["a", "b"],
        }
        for i in range(1_000)
    ]
    response = await fake_gateway.client.post(
        "/v3/users/import", json={"users": users}, headers=fake_gateway.headers
    )
    assert response.status_code == 200, response.text
    [forwarded] = harness.peer_requests
    assert json.loads(forwarded.content) == {"users": users}
