"""No field is dropped silently (issue 7, item 2), for the bodies the gateway parses
(apps, channels) and documents (users, forwarded to the user-directory): each field
given is stored and returned; each field Clarion does not use is accepted, not stored,
and the OpenAPI document says so ("Accepted and ignored", with why)."""

from __future__ import annotations

from typing import Any

import pytest

from clarion_gateway.channels import models as channel_models
from clarion_gateway.testing import ADMIN, AUTH, Harness
from clarion_shared.public import users as public_users

CHANNELS = "/v3/campaigns/channels"
IGNORED_NOTE = "Accepted and ignored"

# Every field of API.md's channel create, with a value other than its default.
CHANNEL_CREATE: dict[str, Any] = {
    "name": "Mail",
    "type": "email",
    "channelId": "mail-main",
    "enabled": True,
    # Complete (the channel is enabled), no credential (returned as given), one key
    # the settings do not know (stored and returned).
    "metadata": {
        "smtp": {"host": "smtp.example.com", "port": 587, "security": "starttls"},
        "from": {"email": "news@example.com"},
        "note": "kept",
    },
}
CHANNEL_UPDATE: dict[str, Any] = {
    "name": "Mail 2",
    "enabled": False,
    "metadata": {
        "smtp": {"host": "smtp2.example.com", "port": 465, "security": "tls"},
        "from": {"email": "news@example.com"},
    },
}
IGNORED_VALUES: dict[str, Any] = {
    "id": "another-id",
    "createdAt": 1,
    "updatedAt": 2,
    "dataType": "text",
    "channelId": "renamed",
    "type": "sms",
}


async def spec_of(harness: Harness) -> dict[str, Any]:
    response = await harness.client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def body_properties(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    schema = spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    properties: dict[str, Any] = schema["properties"]
    return properties


def says_ignored(properties: dict[str, Any], field: str) -> bool:
    return str(properties.get(field, {}).get("description", "")).startswith(IGNORED_NOTE)


# ---------------------------------------------------------------- channels


@pytest.mark.parametrize("field", sorted(CHANNEL_CREATE))
async def test_each_channel_create_field_is_stored_and_returned(
    harness: Harness, field: str
) -> None:
    body = {"name": "Chan", "type": "in_app", "channelId": "chan", field: CHANNEL_CREATE[field]}
    created = await harness.create_channel(**body)
    assert created[field] == body[field]
    got = await harness.client.get(f"{CHANNELS}/{created['channelId']}", headers=AUTH)
    assert got.json()["data"][field] == body[field]
    properties = body_properties(await spec_of(harness), "post", CHANNELS)
    assert field in properties
    assert not says_ignored(properties, field)


@pytest.mark.parametrize("field", sorted(CHANNEL_UPDATE))
async def test_each_channel_update_field_is_stored_and_returned(
    harness: Harness, field: str
) -> None:
    await harness.create_channel(**CHANNEL_CREATE)
    value = CHANNEL_UPDATE[field]
    response = await harness.client.put(f"{CHANNELS}/mail-main", json={field: value}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["data"][field] == value
    got = await harness.client.get(f"{CHANNELS}/mail-main", headers=AUTH)
    assert got.json()["data"][field] == value
    properties = body_properties(await spec_of(harness), "put", f"{CHANNELS}/{{channel_id}}")
    assert field in properties
    assert not says_ignored(properties, field)


@pytest.mark.parametrize("field", sorted(channel_models.IGNORED_ON_CREATE))
async def test_each_ignored_channel_create_field_is_accepted_not_stored_and_documented(
    harness: Harness, field: str
) -> None:
    created = await harness.create_channel(
        name="Chan", type="in_app", **{field: IGNORED_VALUES[field]}
    )
    assert created["channelId"] == "chan"
    if field in created:
        assert created[field] != IGNORED_VALUES[field]
    properties = body_properties(await spec_of(harness), "post", CHANNELS)
    assert says_ignored(properties, field), properties.get(field)


@pytest.mark.parametrize("field", sorted(channel_models.IGNORED_ON_UPDATE))
async def test_each_ignored_channel_update_field_is_accepted_not_stored_and_documented(
    harness: Harness, field: str
) -> None:
    before = await harness.create_channel(**CHANNEL_CREATE)
    response = await harness.client.put(
        f"{CHANNELS}/mail-main", json={field: IGNORED_VALUES[field]}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    after = response.json()["data"]
    assert {k: v for k, v in after.items() if k != "updatedAt"} == {
        k: v for k, v in before.items() if k != "updatedAt"
    }
    got = await harness.client.get(f"{CHANNELS}/mail-main", headers=AUTH)
    assert got.json()["data"] == after
    properties = body_properties(await spec_of(harness), "put", f"{CHANNELS}/{{channel_id}}")
    assert says_ignored(properties, field), properties.get(field)


# ---------------------------------------------------------------- apps (operator)


async def test_every_app_field_is_stored_and_returned_and_others_ignored(
    harness: Harness,
) -> None:
    body = {"name": "Shop", "appId": "shop-fields", "apiKey": "shop-fields-key-123"}
    response = await harness.client.post(
        "/admin/apps", json={**body, "region": "eu", "plan": "free"}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"] == body  # the unknown fields: accepted, not kept
    # The key is stored (hashed): it authenticates the app it names.
    listed = await harness.client.get(
        CHANNELS, headers={"apikey": body["apiKey"], "appid": body["appId"]}
    )
    assert listed.status_code == 200, listed.text
    spec = await spec_of(harness)
    schema = spec["components"]["schemas"]["AppCreate"]
    assert set(schema["properties"]) == set(body)
    assert "accepted and ignored" in schema["description"]


# ---------------------------------------------------------------- users (documented)


@pytest.mark.parametrize(
    ("method", "path", "ignored"),
    [
        ("post", "/v3/users", public_users.IGNORED_ON_CREATE),
        ("put", "/v3/users/{uid}", public_users.IGNORED_ON_UPDATE),
    ],
)
async def test_the_users_bodies_document_status_and_the_ignored_fields(
    harness: Harness, method: str, path: str, ignored: dict[str, str]
) -> None:
    properties = body_properties(await spec_of(harness), method, path)
    assert "presence change" in properties["status"]["description"]
    assert properties["status"]["enum"] == ["online", "offline"]
    for field in ignored:
        assert says_ignored(properties, field), field
    for field in ("name", "avatar", "link", "role", "metadata", "tags", "status"):
        assert not says_ignored(properties, field), field
