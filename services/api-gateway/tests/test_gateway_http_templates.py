"""Template routes over HTTP, on in-memory fakes."""

from __future__ import annotations

from typing import Any

import pytest

from clarion_gateway.testing import AUTH, Harness

BASE = "/v3/campaigns/templates"


async def test_create_accepts_cometchat_bodies(harness: Harness) -> None:
    body = {
        "name": "Order shipped",
        "templateCategory": "Transactional",
        "label": "Order",
        "alternativeText": "Your order shipped",
        "tags": ["orders", "shipping", "orders"],
        "config": {"whatever": True},
        "channels": [
            {
                "channelType": "in_app",
                "content": {"title": "Hi {{user_name}}", "body": "Order {{order_id}} shipped"},
                "dataType": "ui_template",
                "messageRetentionHours": 24,
                "categoryFilterEnabled": True,
                "sequenceOrder": 1,
                "waitMinutes": 5,
            },
            {"channelType": "push"},  # content omitted: defaults applied
        ],
        # CometChat declares variableSchema as strings: string variables.
        "variableSchema": ["user_name", {"key": "order_id", "required": True}],
    }
    response = await harness.client.post(BASE, json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["templateId"] == data["id"] == "order_shipped"
    assert (data["status"], data["version"], data["approvedVersion"]) == ("draft", 1, None)
    assert data["tags"] == ["orders", "shipping"]
    assert data["channels"][1] == {
        "channelType": "push",
        "channelId": None,
        "content": {"title": "Order shipped", "body": "Your order shipped"},
    }
    assert [v["key"] for v in data["variableSchema"]] == ["user_name", "order_id"]
    assert data["variableSchema"][1]["required"] is True
    assert [v["version"] for v in data["versions"]] == [1]
    assert set(data["versions"][0]) >= {
        "version",
        "status",
        "channels",
        "variableSchema",
        "createdAt",
    }


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"channels": [{"channelType": "sms", "content": {"text": "x"}}]}, 400, "ERR_VALIDATION"),
        ({"name": "x"}, 400, "ERR_VALIDATION"),
        ({"name": "x", "channels": []}, 400, "ERR_VALIDATION"),
        ({"name": "x", "channels": [{"channelType": "fax"}]}, 400, "ERR_VALIDATION"),
        (
            {"name": "x", "channels": [{"channelType": "email", "content": {"subject": "s"}}]},
            400,
            "ERR_VALIDATION",
        ),
        (
            {
                "name": "x",
                "channels": [
                    {"channelType": "sms", "content": {"text": "a"}},
                    {"channelType": "sms", "content": {"text": "b"}},
                ],
            },
            409,
            "ERR_CONFLICT",
        ),
        (
            {
                "name": "x",
                "channels": [{"channelType": "sms", "content": {"text": "{{a}}"}}],
                "variableSchema": [{"key": "a", "type": "image", "defaultValue": "u"}],
            },
            400,
            "ERR_VALIDATION",
        ),
        (
            {"name": "x", "templateId": "no spaces", "channels": [{"channelType": "sms"}]},
            400,
            "ERR_VALIDATION",
        ),
    ],
)
async def test_create_errors(
    harness: Harness, body: dict[str, Any], status: int, code: str
) -> None:
    response = await harness.client.post(BASE, json=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_unknown_variables_are_named(harness: Harness) -> None:
    response = await harness.client.post(
        BASE,
        json={
            "name": "x",
            "channels": [{"channelType": "sms", "content": {"text": "{{known}} {{who}} {{what}}"}}],
            "variableSchema": [{"key": "known"}],
        },
        headers=AUTH,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["details"] == {"unknownVariables": ["what", "who"]}
    assert "what, who" in error["message"]


async def test_duplicate_template_id_is_409(harness: Harness) -> None:
    await harness.create_template(templateId="welcome", approve=False)
    response = await harness.client.post(
        BASE,
        json={"name": "Other", "templateId": "welcome", "channels": [{"channelType": "sms"}]},
        headers=AUTH,
    )
    assert response.status_code == 409


async def test_versions_through_edits(harness: Harness) -> None:
    template = await harness.create_template(templateId="welcome")
    assert (template["status"], template["version"], template["approvedVersion"]) == (
        "approved",
        1,
        1,
    )
    url = f"{BASE}/welcome"
    # Same content again: nothing changes.
    same = await harness.client.put(
        url, json={"channels": template["channels"], "variableSchema": ["name"]}, headers=AUTH
    )
    assert same.json()["data"]["version"] == 1
    # Editing the approved content: version 2, a draft; v1 still approved and used.
    edited = await harness.client.put(
        f"{url}/channels/in_app",
        json={"content": {"title": "Hello {{name}}", "body": "New"}},
        headers=AUTH,
    )
    assert edited.status_code == 200, edited.text
    data = edited.json()["data"]
    assert (data["status"], data["version"], data["approvedVersion"]) == ("draft", 2, 1)
    assert [(v["version"], v["status"]) for v in data["versions"]] == [
        (1, "approved"),
        (2, "draft"),
    ]
    # Editing a draft newest version changes it in place; plain fields never version.
    renamed = await harness.client.put(
        url,
        json={"name": "Welcome!", "tags": ["a"], "variableSchema": ["name", "extra"]},
        headers=AUTH,
    )
    data = renamed.json()["data"]
    assert (data["name"], data["tags"], data["version"]) == ("Welcome!", ["a"], 2)
    assert [v["key"] for v in data["variableSchema"]] == ["name", "extra"]
    approved = await harness.client.put(url, json={"status": "approved"}, headers=AUTH)
    data = approved.json()["data"]
    assert (data["status"], data["version"], data["approvedVersion"]) == ("approved", 2, 2)
    # A version by hand copies the newest.
    by_hand = await harness.client.post(f"{url}/versions", headers=AUTH)
    assert by_hand.status_code == 201
    data = by_hand.json()["data"]
    assert (data["status"], data["version"], data["approvedVersion"]) == ("draft", 3, 2)
    assert data["versions"][2]["channels"] == data["versions"][1]["channels"]
    got = await harness.client.get(url, headers=AUTH)
    assert got.json()["data"] == data


async def test_edit_with_unknown_token_is_refused(harness: Harness) -> None:
    await harness.create_template(templateId="welcome")
    response = await harness.client.put(
        f"{BASE}/welcome/channels/in_app",
        json={"content": {"title": "Hi {{nobody}}", "body": "x"}},
        headers=AUTH,
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"unknownVariables": ["nobody"]}
    # Removing a variable the content still uses is refused too.
    response = await harness.client.put(
        f"{BASE}/welcome", json={"variableSchema": []}, headers=AUTH
    )
    assert response.status_code == 400


async def test_archive_and_restore(harness: Harness) -> None:
    await harness.create_template(templateId="welcome")
    archived = await harness.client.delete(f"{BASE}/welcome", headers=AUTH)
    assert archived.status_code == 200
    assert archived.json()["data"]["status"] == "archived"
    to_draft = await harness.client.put(f"{BASE}/welcome", json={"status": "draft"}, headers=AUTH)
    assert to_draft.json()["data"]["status"] == "approved"
    back = await harness.client.put(f"{BASE}/welcome", json={"status": "draft"}, headers=AUTH)
    assert back.status_code == 409
    missing = await harness.client.delete(f"{BASE}/nope", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ERR_NOT_FOUND"


async def test_list_filters(harness: Harness) -> None:
    await harness.create_template(
        name="Promo one", tags=["promo", "summer"], templateCategory="Marketing"
    )
    await harness.create_template(name="Promo two", tags=["promo"], approve=False)
    await harness.create_template(
        name="Receipt", tags=["billing"], templateCategory="Transactional"
    )

    async def ids(**params: Any) -> list[str]:
        response = await harness.client.get(BASE, params=params, headers=AUTH)
        assert response.status_code == 200, response.text
        return sorted(t["templateId"] for t in response.json()["data"])

    assert await ids() == ["promo_one", "promo_two", "receipt"]
    assert await ids(status="draft") == ["promo_two"]
    assert await ids(search="PROMO") == ["promo_one", "promo_two"]
    assert await ids(tags="summer,billing") == ["promo_one", "receipt"]
    assert await ids(tags="promo,summer", tagMatch="all") == ["promo_one"]
    assert await ids(templateCategory="Transactional") == ["receipt"]
    page = await harness.client.get(
        BASE, params={"perPage": 2, "sort": "name", "order": "asc"}, headers=AUTH
    )
    body = page.json()
    assert [t["templateId"] for t in body["data"]] == ["promo_one", "promo_two"]
    assert "versions" not in body["data"][0]
    assert body["meta"]["pagination"]["total_pages"] == 2
    bad = await harness.client.get(BASE, params={"tagMatch": "some"}, headers=AUTH)
    assert bad.status_code == 400


async def test_create_with_status_approved(harness: Harness) -> None:
    response = await harness.client.post(
        BASE,
        json={"name": "Now", "status": "approved", "channels": [{"channelType": "sms"}]},
        headers=AUTH,
    )
    data = response.json()["data"]
    assert (data["status"], data["approvedVersion"]) == ("approved", 1)


async def test_idempotent_create(harness: Harness) -> None:
    body = {"name": "Once", "channels": [{"channelType": "sms"}]}
    headers = {**AUTH, "Idempotency-Key": "create-once"}
    first = await harness.client.post(BASE, json=body, headers=headers)
    second = await harness.client.post(BASE, json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(harness.store.templates.items) == 1
    other = await harness.client.post(BASE, json={**body, "name": "Twice"}, headers=headers)
    assert other.status_code == 409
