"""``/v3/webhooks`` on the gateway harness: endpoints created, listed, read, changed and
deleted per app, the secret shown once, the password never, the limit of 25, and every
write's configuration published for the webhook-emitter (a tombstone for a delete)."""

from __future__ import annotations

from typing import Any

import pytest

from clarion_gateway.testing import ADMIN, AUTH, Harness, gateway_harness, make_settings
from clarion_shared.webhook_signing import signature

WEBHOOKS = "/v3/webhooks"
URL = "https://hooks.example.com/clarion"


async def _create(harness: Harness, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "Orders")
    body.setdefault("webhookURL", URL)
    body.setdefault("triggers", ["after_batch_completed"])
    response = await harness.client.post(WEBHOOKS, json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def _other_app(harness: Harness) -> dict[str, str]:
    created = await harness.client.post("/admin/apps", json={"name": "Other"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    return {"apikey": created.json()["data"]["apiKey"]}


async def test_a_created_webhook_shows_its_secret_once_and_never_its_password(
    harness: Harness,
) -> None:
    created = await _create(
        harness,
        triggers=["after_feed_item_sent", "after_batch_completed", "after_feed_item_sent"],
        useBasicAuth=True,
        username="ann",
        password="s3cret",
        dataType="ignored",  # CometChat-style extras are accepted and ignored
        id="mine",
    )
    assert created["id"].startswith("wh_")
    assert created["signingSecret"].startswith("whsec_")
    signature(created["signingSecret"], "msg_1", 1, b"{}")  # a usable Standard Webhooks key
    assert created["triggers"] == ["after_feed_item_sent", "after_batch_completed"]
    assert created["webhookURL"] == URL
    assert (created["enabled"], created["useBasicAuth"], created["username"]) == (
        True,
        True,
        "ann",
    )
    assert created["disabledReason"] is None
    assert created["createdAt"] == created["updatedAt"]
    assert "password" not in created
    read = await harness.client.get(f"{WEBHOOKS}/{created['id']}", headers=AUTH)
    assert read.status_code == 200
    shown = read.json()["data"]
    assert "signingSecret" not in shown
    assert "password" not in shown
    assert shown == {k: v for k, v in created.items() if k != "signingSecret"}
    # The emitter gets everything it needs to deliver.
    [(key, config)] = harness.webhook_configs.records
    assert key == f"clarion-dev:{created['id']}"
    assert config is not None
    assert (config.signing_secret, config.password, config.username) == (
        created["signingSecret"],
        "s3cret",
        "ann",
    )
    assert config.url == URL
    assert config.updated_at // 1000 == created["updatedAt"]


async def test_the_list_pages_the_app_s_webhooks_oldest_first(harness: Harness) -> None:
    ids = [(await _create(harness, name=f"w{i}"))["id"] for i in range(3)]
    other = await _other_app(harness)
    await harness.client.post(
        WEBHOOKS,
        json={"name": "theirs", "webhookURL": URL, "triggers": ["after_batch_completed"]},
        headers=other,
    )
    first = await harness.client.get(f"{WEBHOOKS}?perPage=2", headers=AUTH)
    assert first.status_code == 200
    body = first.json()
    assert body["meta"]["pagination"] == {
        "total": 3,
        "count": 2,
        "per_page": 2,
        "current_page": 1,
        "total_pages": 2,
    }
    second = (await harness.client.get(f"{WEBHOOKS}?perPage=2&page=2", headers=AUTH)).json()
    listed = body["data"] + second["data"]
    assert sorted(w["id"] for w in listed) == sorted(ids)  # the app's own, each once
    order = [(w["createdAt"], w["id"]) for w in listed]
    assert order == sorted(order)  # oldest first (then by id)
    assert all("signingSecret" not in w for w in body["data"])
    bad = await harness.client.get(f"{WEBHOOKS}?perPage=101", headers=AUTH)
    assert bad.status_code == 400


async def test_another_app_s_webhook_is_not_found(harness: Harness) -> None:
    created = await _create(harness)
    other = await _other_app(harness)
    path = f"{WEBHOOKS}/{created['id']}"
    for method, body in (("GET", None), ("PUT", {"name": "x"}), ("DELETE", None)):
        response = await harness.client.request(method, path, json=body, headers=other)
        assert response.status_code == 404, method
        assert response.json()["error"]["code"] == "ERR_NOT_FOUND"
    assert (await harness.client.get(path, headers=AUTH)).status_code == 200


async def test_an_update_changes_what_it_names_and_publishes_the_new_configuration(
    harness: Harness,
) -> None:
    created = await _create(harness, useBasicAuth=True, username="ann", password="pw")
    path = f"{WEBHOOKS}/{created['id']}"
    response = await harness.client.put(
        path,
        json={"name": "Renamed", "triggers": ["after_campaign_completed"], "enabled": False},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    updated = response.json()["data"]
    assert (updated["name"], updated["triggers"], updated["enabled"]) == (
        "Renamed",
        ["after_campaign_completed"],
        False,
    )
    assert updated["webhookURL"] == URL
    assert "signingSecret" not in updated
    latest = harness.webhook_configs.latest(f"clarion-dev:{created['id']}")
    assert latest is not None
    assert (latest.name, latest.enabled, latest.password) == ("Renamed", False, "pw")
    assert latest.signing_secret == created["signingSecret"]
    first = harness.webhook_configs.records[0][1]
    assert first is not None
    assert latest.updated_at > first.updated_at
    missing = await harness.client.put(f"{WEBHOOKS}/wh_nope", json={"name": "x"}, headers=AUTH)
    assert missing.status_code == 404


async def test_rotating_the_secret_shows_the_new_one_once_and_keeps_the_old_one_signing(
    harness: Harness,
) -> None:
    created = await _create(harness)
    path = f"{WEBHOOKS}/{created['id']}"
    response = await harness.client.put(path, json={"rotateSecret": True}, headers=AUTH)
    assert response.status_code == 200, response.text
    new_secret = response.json()["data"]["signingSecret"]
    assert new_secret.startswith("whsec_")
    assert new_secret != created["signingSecret"]
    config = harness.webhook_configs.latest(f"clarion-dev:{created['id']}")
    assert config is not None
    assert config.signing_secret == new_secret
    assert config.previous_signing_secret == created["signingSecret"]
    assert config.previous_secret_expires_at is not None
    overlap_ms = config.previous_secret_expires_at - config.updated_at
    assert 24 * 3600 * 1000 - 5000 <= overlap_ms <= 24 * 3600 * 1000
    again = (await harness.client.get(path, headers=AUTH)).json()["data"]
    assert "signingSecret" not in again


async def test_a_deleted_webhook_is_gone_and_its_tombstone_published(harness: Harness) -> None:
    created = await _create(harness)
    path = f"{WEBHOOKS}/{created['id']}"
    response = await harness.client.delete(path, headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"data": {"success": True}}
    assert (await harness.client.get(path, headers=AUTH)).status_code == 404
    assert (await harness.client.delete(path, headers=AUTH)).status_code == 404
    assert harness.webhook_configs.records[-1] == (f"clarion-dev:{created['id']}", None)
    # Published, the tombstone's document is gone too.
    assert harness.store.webhooks.docs == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"webhookURL": "http://hooks.example.com/in"}, "webhookURL"),
        ({"webhookURL": "https://127.0.0.1:9000/in"}, "webhookURL"),
        ({"webhookURL": "https://u:p@hooks.example.com/in"}, "webhookURL"),
        ({"webhookURL": "not a url"}, "webhookURL"),
        ({"webhookURL": "https://hooks.example.com/" + "a" * 2100}, "webhookURL"),
        ({"webhookURL": 42}, "webhookURL"),
        ({"triggers": []}, "triggers"),
        ({"triggers": ["after_everything"]}, "triggers.0"),
        ({"triggers": "after_batch_completed"}, "triggers"),
        ({"name": ""}, "name"),
        ({"name": "n" * 101}, "name"),
        ({"useBasicAuth": True}, "username"),
        ({"useBasicAuth": True, "username": "ann"}, "password"),
    ],
)
async def test_invalid_webhooks_are_400_naming_the_field(
    harness: Harness, body: dict[str, Any], field: str
) -> None:
    full = {"name": "Orders", "webhookURL": URL, "triggers": ["after_batch_completed"], **body}
    response = await harness.client.post(WEBHOOKS, json=full, headers=AUTH)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "ERR_VALIDATION"
    assert field in [d["field"] for d in error["details"]], error
    assert harness.webhook_configs.records == []


async def test_an_update_is_validated_as_a_create(harness: Harness) -> None:
    created = await _create(harness)
    path = f"{WEBHOOKS}/{created['id']}"
    for body in (
        {"webhookURL": "https://10.1.2.3/in"},
        {"triggers": ["nope"]},
        {"useBasicAuth": True},
        {"name": ""},
    ):
        response = await harness.client.put(path, json=body, headers=AUTH)
        assert response.status_code == 400, body
    assert len(harness.webhook_configs.records) == 1


async def test_local_receivers_are_accepted_when_private_addresses_are_allowed() -> None:
    settings = make_settings(webhooks_allow_private=True)
    async with gateway_harness(settings) as harness:
        created = await _create(harness, webhookURL="http://127.0.0.1:9876/hook")
        assert created["webhookURL"] == "http://127.0.0.1:9876/hook"


def test_the_setting_is_read_under_api_md_s_name(monkeypatch: pytest.MonkeyPatch) -> None:
    assert make_settings().webhooks_allow_private is False
    monkeypatch.setenv("CLARION_GATEWAY_WEBHOOKS_ALLOW_PRIVATE", "true")
    assert make_settings().webhooks_allow_private is False
    monkeypatch.setenv("CLARION_WEBHOOKS_ALLOW_PRIVATE", "true")
    assert make_settings().webhooks_allow_private is True
    assert make_settings().webhook_rules().allow_private is True


async def test_an_app_has_at_most_25_webhooks(harness: Harness) -> None:
    ids = [(await _create(harness, name=f"w{i}"))["id"] for i in range(25)]
    body = {"name": "one more", "webhookURL": URL, "triggers": ["after_batch_completed"]}
    refused = await harness.client.post(WEBHOOKS, json=body, headers=AUTH)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "ERR_CONFLICT"
    assert refused.json()["error"]["details"] == {"limit": 25}
    other = await _other_app(harness)
    assert (await harness.client.post(WEBHOOKS, json=body, headers=other)).status_code == 201
    await harness.client.delete(f"{WEBHOOKS}/{ids[0]}", headers=AUTH)
    assert (await harness.client.post(WEBHOOKS, json=body, headers=AUTH)).status_code == 201


async def test_a_create_over_the_limit_that_raced_past_the_count_takes_itself_back(
    harness: Harness,
) -> None:
    """Two creates at 24 both pass the first count; the later insert's second count
    sees 26 and takes its webhook back (a tombstone, published), so 25 stay."""
    for i in range(24):
        await _create(harness, name=f"w{i}")
    webhooks = harness.store.webhooks
    real_insert = webhooks.insert

    async def insert_beside_another(webhook: Any) -> bool:
        webhooks.insert = real_insert  # type: ignore[method-assign]
        await _create(harness, name="the other")  # lands between the count and this insert
        return await real_insert(webhook)

    webhooks.insert = insert_beside_another  # type: ignore[method-assign]
    body = {"name": "late", "webhookURL": URL, "triggers": ["after_batch_completed"]}
    refused = await harness.client.post(WEBHOOKS, json=body, headers=AUTH)
    assert refused.status_code == 409
    listed = (await harness.client.get(f"{WEBHOOKS}?perPage=100", headers=AUTH)).json()
    assert listed["meta"]["pagination"]["total"] == 25
    assert "late" not in [w["name"] for w in listed["data"]]
    key, tombstone = harness.webhook_configs.records[-1]
    assert tombstone is None
    assert key.split(":", 1)[1] not in [w["id"] for w in listed["data"]]


async def test_a_create_with_an_idempotency_key_is_done_once(harness: Harness) -> None:
    body = {"name": "Orders", "webhookURL": URL, "triggers": ["after_batch_completed"]}
    headers = {**AUTH, "Idempotency-Key": "create-1"}
    first = await harness.client.post(WEBHOOKS, json=body, headers=headers)
    again = await harness.client.post(WEBHOOKS, json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    listed = (await harness.client.get(WEBHOOKS, headers=AUTH)).json()
    assert listed["meta"]["pagination"]["total"] == 1
    other = await harness.client.post(WEBHOOKS, json={**body, "name": "x"}, headers=headers)
    assert other.status_code == 409
