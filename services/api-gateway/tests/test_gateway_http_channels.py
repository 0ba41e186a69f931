"""Operator, authentication and channel routes over HTTP, on in-memory fakes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from clarion_gateway.app import Settings
from clarion_gateway.testing import ADMIN, AUTH, DEV_APP, Harness
from clarion_shared.settings import DEV_ADMIN_TOKEN

# ---------------------------------------------------------------- operator and auth


async def test_admin_creates_an_app_whose_key_works(harness: Harness) -> None:
    response = await harness.client.post("/admin/apps", json={"name": "Shop"}, headers=ADMIN)
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["name"] == "Shop"
    assert data["apiKey"].startswith("ck_")
    assert data["appId"]
    # Stored hashed: the key itself is nowhere in the store.
    assert data["apiKey"] not in harness.store.apps.keys
    listed = await harness.client.get(
        "/v3/campaigns/channels", headers={"apikey": data["apiKey"], "appid": data["appId"]}
    )
    assert listed.status_code == 200
    assert listed.json()["data"] == []


async def test_admin_app_with_given_ids_and_conflicts(harness: Harness) -> None:
    body = {"name": "Shop", "appId": "shop-1", "apiKey": "shop-key-123456"}
    response = await harness.client.post("/admin/apps", json=body, headers=ADMIN)
    assert response.status_code == 201
    assert response.json()["data"] == body
    again = await harness.client.post(
        "/admin/apps", json={"name": "Other", "appId": "shop-1"}, headers=ADMIN
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "ERR_CONFLICT"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": DEV_ADMIN_TOKEN}]
)
async def test_admin_needs_the_token(harness: Harness, headers: dict[str, str]) -> None:
    response = await harness.client.post("/admin/apps", json={"name": "x"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "ERR_UNAUTHORIZED"


@pytest.mark.parametrize(
    "headers",
    [{}, {"apikey": "wrong-key"}, {"apikey": "clarion-dev-key", "appid": "another-app"}],
)
async def test_v3_needs_a_valid_key(harness: Harness, headers: dict[str, str]) -> None:
    for method, path in [
        ("GET", "/v3/campaigns/channels"),
        ("POST", "/v3/campaigns/templates"),
        ("POST", "/v3/campaigns/notifications/messages"),
        ("GET", "/v3/users"),
        ("GET", "/v3/campaigns/notification-feed"),
    ]:
        response = await harness.client.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (method, path)
        error = response.json()["error"]
        assert error["code"] == "ERR_UNAUTHORIZED"
        assert error["source"] == "clarion"


async def test_dev_app_exists_at_start(harness: Harness) -> None:
    assert DEV_APP in harness.store.apps.apps
    response = await harness.client.get(
        "/v3/campaigns/channels", headers={**AUTH, "appid": DEV_APP}
    )
    assert response.status_code == 200


def test_production_refuses_the_default_admin_token() -> None:
    with pytest.raises(ValidationError):
        Settings(environment="production")
    production = Settings(environment="production", admin_token="s3cret", internal_token="t0ken")
    assert production.admin_token == "s3cret"


def test_settings_read_the_documented_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLARION_GATEWAY_ADMIN_TOKEN", "from-env")
    monkeypatch.setenv("CLARION_DEV_APP_ID", "my-dev")
    monkeypatch.setenv("CLARION_DEV_API_KEY", "my-dev-key")
    monkeypatch.setenv("CLARION_GATEWAY_PORT", "9999")
    settings = Settings()
    assert (settings.admin_token, settings.dev_app_id, settings.dev_api_key, settings.port) == (
        "from-env",
        "my-dev",
        "my-dev-key",
        9999,
    )


# ---------------------------------------------------------------- channels


async def test_channel_lifecycle_masks_credentials_and_publishes_config(harness: Harness) -> None:
    smtp = {"host": "smtp.example.com", "port": 587, "security": "starttls"}
    created = await harness.create_channel(
        name="Email (SMTP)",
        type="email",
        enabled=False,
        metadata={"smtp": {**smtp, "password": "correct-horse-battery"}},
        dataType="ignored",
    )
    assert created["channelId"] == "email-smtp"
    assert created["enabled"] is False
    assert created["metadata"] == {"smtp": {**smtp, "password": "****tery"}}
    config = harness.commands.configs[-1]
    assert (config.app_id, config.channel_id, config.channel_type) == (
        DEV_APP,
        "email-smtp",
        "email",
    )
    assert config.metadata["smtp"] == {**smtp, "password": "correct-horse-battery"}  # full

    # Sent back as read (masked), the password keeps its value.
    metadata = {**created["metadata"], "from": {"email": "news@example.com"}}
    updated = await harness.client.put(
        "/v3/campaigns/channels/email-smtp",
        json={"enabled": True, "metadata": metadata, "type": "sms"},
        headers=AUTH,
    )
    assert updated.status_code == 200, updated.text
    data = updated.json()["data"]
    assert (data["enabled"], data["type"], data["metadata"]) == (True, "email", metadata)
    published = harness.commands.configs[-1]
    assert published.metadata["smtp"] == {**smtp, "password": "correct-horse-battery"}
    assert published.enabled is True

    got = await harness.client.get("/v3/campaigns/channels/email-smtp", headers=AUTH)
    assert got.json()["data"] == data


async def test_channel_ids_conflicts_and_push_limit(harness: Harness) -> None:
    await harness.create_channel(name="Feed", channelId="feed")
    dup = await harness.client.post(
        "/v3/campaigns/channels",
        json={"name": "x", "type": "in_app", "channelId": "feed"},
        headers=AUTH,
    )
    assert dup.status_code == 409
    # A generated id that is taken gets a suffix instead.
    again = await harness.create_channel(name="Feed")
    assert again["channelId"].startswith("feed-")
    await harness.create_channel(name="Push", type="push")
    second_push = await harness.client.post(
        "/v3/campaigns/channels", json={"name": "Push 2", "type": "push"}, headers=AUTH
    )
    assert second_push.status_code == 409
    assert second_push.json()["error"]["code"] == "ERR_CONFLICT"
    availability = await harness.client.get("/v3/campaigns/channels/availability", headers=AUTH)
    rows = {row["type"]: row for row in availability.json()["data"]}
    assert rows["push"] == {"type": "push", "available": False, "limit": 1, "count": 1}
    assert rows["in_app"]["available"] is True
    assert rows["whatsapp"] == {"type": "whatsapp", "available": True, "limit": None, "count": 0}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"type": "in_app"}, 400, "ERR_VALIDATION"),
        ({"name": "x"}, 400, "ERR_VALIDATION"),
        ({"name": "x", "type": "pigeon"}, 400, "ERR_VALIDATION"),
        ({"name": "x", "type": "sms", "channelId": "bad id"}, 400, "ERR_VALIDATION"),
        ({"name": "x", "type": "sms", "metadata": "nope"}, 400, "ERR_VALIDATION"),
    ],
)
async def test_channel_create_errors(
    harness: Harness, body: dict[str, object], status: int, code: str
) -> None:
    response = await harness.client.post("/v3/campaigns/channels", json=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_channel_list_search_and_pages(harness: Harness) -> None:
    for name in ("Alpha feed", "Beta feed", "Gamma", "Delta"):
        await harness.create_channel(name=name)
    page = await harness.client.get(
        "/v3/campaigns/channels", params={"search": "FEED", "perPage": 1, "page": 2}, headers=AUTH
    )
    body = page.json()
    assert [c["channelId"] for c in body["data"]] == ["beta-feed"]
    assert body["meta"]["pagination"] == {
        "total": 2,
        "count": 1,
        "per_page": 1,
        "current_page": 2,
        "total_pages": 2,
    }
    too_big = await harness.client.get("/v3/campaigns/channels?perPage=101", headers=AUTH)
    assert too_big.status_code == 400


async def test_other_apps_channels_are_404(harness: Harness) -> None:
    await harness.create_channel(name="Mine", channelId="mine")
    other = await harness.client.post(
        "/admin/apps", json={"name": "Other", "apiKey": "other-key-123"}, headers=ADMIN
    )
    assert other.status_code == 201
    response = await harness.client.get(
        "/v3/campaigns/channels/mine", headers={"apikey": "other-key-123"}
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ERR_NOT_FOUND"
    missing = await harness.client.put(
        "/v3/campaigns/channels/nope", json={"enabled": True}, headers=AUTH
    )
    assert missing.status_code == 404


async def test_config_publish_failure_is_503(harness: Harness) -> None:
    from aiokafka.errors import KafkaConnectionError

    harness.commands.fail_with = KafkaConnectionError()
    response = await harness.client.post(
        "/v3/campaigns/channels", json={"name": "x", "type": "sms"}, headers=AUTH
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "ERR_UNAVAILABLE"
