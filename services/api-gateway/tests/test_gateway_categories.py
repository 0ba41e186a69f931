"""Template categories over HTTP, on the in-memory harness (issue 7, item 3): CometChat's
seven in every app, create / list / get / update / delete with CometChat's status codes,
a template naming an unknown category creates it, a category in use stays."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from clarion_gateway.testing import ADMIN, AUTH, Harness

CATEGORIES = "/v3/campaigns/templates/categories"
TEMPLATES = "/v3/campaigns/templates"
DEFAULTS = [
    "Onboarding",
    "Transactional",
    "Marketing",
    "Product_Showcase",
    "Alerts",
    "Polls",
    "Custom",
]


async def _create(harness: Harness, headers: dict[str, str] = AUTH, **body: Any) -> httpx.Response:
    return await harness.client.post(CATEGORIES, json=body, headers=headers)


async def _names(harness: Harness, headers: dict[str, str] = AUTH, **params: Any) -> list[str]:
    response = await harness.client.get(CATEGORIES, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [c["name"] for c in response.json()["data"]]


async def _other_app(harness: Harness) -> dict[str, str]:
    response = await harness.client.post(
        "/admin/apps", json={"name": "Other", "apiKey": "other-key-123"}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return {"apikey": "other-key-123"}


async def test_every_app_has_cometchats_seven(harness: Harness) -> None:
    # Page mode (page given): ties in creation order. Sort or order alone ask for a
    # cursor page (API.md), whose ties go by id.
    response = await harness.client.get(
        CATEGORIES, params={"page": 1, "sort": "createdAt", "order": "asc"}, headers=AUTH
    )
    assert response.status_code == 200
    body = response.json()
    assert [c["name"] for c in body["data"]] == DEFAULTS
    assert body["meta"]["pagination"]["total"] == 7
    first = body["data"][0]
    assert first == {
        "id": "onboarding",
        "name": "Onboarding",
        "description": None,
        "isDefault": True,
        "createdAt": first["createdAt"],
        "updatedAt": first["createdAt"],
    }
    # Read again (and from another app): the same seven, never a second set.
    assert await _names(harness, page=1, sort="createdAt", order="asc") == DEFAULTS
    assert sorted(await _names(harness, await _other_app(harness))) == sorted(DEFAULTS)
    assert len(harness.store.categories.items) == 2


async def test_create_get_list_and_a_duplicate_name(harness: Harness) -> None:
    created = await _create(harness, name="Billing", description="Invoices", dataType="x")
    assert created.status_code == 201, created.text
    category = created.json()["data"]
    assert category["id"] == "billing"
    assert (category["name"], category["description"], category["isDefault"]) == (
        "Billing",
        "Invoices",
        False,
    )
    got = await harness.client.get(f"{CATEGORIES}/billing", headers=AUTH)
    assert got.status_code == 200
    assert got.json()["data"] == category
    assert "Billing" in await _names(harness)
    assert (await _names(harness, sort="name", order="asc"))[:2] == ["Alerts", "Billing"]
    page = await harness.client.get(CATEGORIES, params={"page": 2, "perPage": 5}, headers=AUTH)
    assert page.json()["meta"]["pagination"]["total"] == 8
    assert len(page.json()["data"]) == 3

    duplicate = await _create(harness, name="Billing")
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "ERR_CONFLICT"
    assert (await _create(harness, name="Marketing")).status_code == 409  # a default's name
    # Another name that slugs the same gets an id of its own.
    other = await _create(harness, name="billing!")
    assert other.status_code == 201
    assert other.json()["data"]["id"] == "billing_2"


async def test_bad_bodies_are_400(harness: Harness) -> None:
    for body in ({}, {"name": ""}, {"name": "   "}, {"name": "x" * 101}, {"name": "a\u0007b"}):
        response = await harness.client.post(CATEGORIES, json=body, headers=AUTH)
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "ERR_VALIDATION"
    long_description = await _create(harness, name="Ok", description="d" * 1001)
    assert long_description.status_code == 400
    trimmed = await _create(harness, name="  Spaced  ")
    assert trimmed.json()["data"]["name"] == "Spaced"


async def test_unknown_ids_are_404_and_another_apps_too(harness: Harness) -> None:
    await _create(harness, name="Billing")
    other = await _other_app(harness)
    for method in ("GET", "PUT", "DELETE"):
        for headers in (AUTH, other):
            path = f"{CATEGORIES}/{'nope' if headers is AUTH else 'billing'}"
            response = await harness.client.request(
                method, path, headers=headers, json={"name": "X"} if method == "PUT" else None
            )
            assert response.status_code == 404, (method, headers)
            assert response.json()["error"]["code"] == "ERR_NOT_FOUND"


async def test_update_renames_and_describes(harness: Harness) -> None:
    await _create(harness, name="Billing", description="Invoices")
    renamed = await harness.client.put(
        f"{CATEGORIES}/billing", json={"name": "Payments"}, headers=AUTH
    )
    assert renamed.status_code == 200
    data = renamed.json()["data"]
    assert (data["id"], data["name"], data["description"]) == ("billing", "Payments", "Invoices")
    cleared = await harness.client.put(
        f"{CATEGORIES}/billing", json={"description": None}, headers=AUTH
    )
    assert cleared.json()["data"]["description"] is None
    assert cleared.json()["data"]["name"] == "Payments"
    taken = await harness.client.put(f"{CATEGORIES}/billing", json={"name": "Alerts"}, headers=AUTH)
    assert taken.status_code == 409
    same = await harness.client.put(f"{CATEGORIES}/billing", json={}, headers=AUTH)
    assert same.status_code == 200
    assert same.json()["data"]["updatedAt"] == cleared.json()["data"]["updatedAt"]


async def test_a_default_keeps_its_name_and_stays(harness: Harness) -> None:
    described = await harness.client.put(
        f"{CATEGORIES}/marketing", json={"description": "Promotions"}, headers=AUTH
    )
    assert described.status_code == 200
    assert described.json()["data"]["description"] == "Promotions"
    same_name = await harness.client.put(
        f"{CATEGORIES}/marketing", json={"name": "Marketing"}, headers=AUTH
    )
    assert same_name.status_code == 200
    renamed = await harness.client.put(
        f"{CATEGORIES}/marketing", json={"name": "Promos"}, headers=AUTH
    )
    assert renamed.status_code == 409
    assert renamed.json()["error"]["details"] == {"id": "marketing", "name": "Marketing"}
    deleted = await harness.client.delete(f"{CATEGORIES}/marketing", headers=AUTH)
    assert deleted.status_code == 409
    assert sorted(await _names(harness)) == sorted(DEFAULTS)


async def test_delete(harness: Harness) -> None:
    await _create(harness, name="Billing")
    deleted = await harness.client.delete(f"{CATEGORIES}/billing", headers=AUTH)
    assert deleted.status_code == 200
    assert deleted.json() == {"data": {"success": True}}
    assert (await harness.client.get(f"{CATEGORIES}/billing", headers=AUTH)).status_code == 404
    again = await harness.client.delete(f"{CATEGORIES}/billing", headers=AUTH)
    assert again.status_code == 404
    assert "Billing" not in await _names(harness)


async def test_a_template_naming_an_unknown_category_creates_it(harness: Harness) -> None:
    template = await harness.create_template(
        approve=False, name="Receipt", templateCategory=" Billing "
    )
    assert template["templateCategory"] == "Billing"  # stored as the category's name
    got = await harness.client.get(f"{CATEGORIES}/billing", headers=AUTH)
    assert got.status_code == 200
    assert got.json()["data"]["isDefault"] is False
    # A known one (a default, or the new one) creates nothing more.
    await harness.create_template(approve=False, name="Promo", templateCategory="Marketing")
    await harness.create_template(approve=False, name="Receipt 2", templateCategory="Billing")
    assert len(await _names(harness)) == 8
    # An update naming an unknown category creates it too.
    updated = await harness.client.put(
        f"{TEMPLATES}/receipt", json={"templateCategory": "Finance"}, headers=AUTH
    )
    assert updated.status_code == 200
    assert updated.json()["data"]["templateCategory"] == "Finance"
    assert "Finance" in await _names(harness)
    listed = await harness.client.get(
        TEMPLATES, params={"templateCategory": "Finance"}, headers=AUTH
    )
    assert [t["templateId"] for t in listed.json()["data"]] == ["receipt"]


async def test_a_failed_template_save_creates_no_category(harness: Harness) -> None:
    bad = await harness.client.post(
        TEMPLATES,
        json={"name": "Bad", "templateCategory": "Ghost", "channels": [{"channelType": "sms"}]}
        | {"variableSchema": [{"key": "1x"}]},
        headers=AUTH,
    )
    assert bad.status_code == 400
    missing = await harness.client.put(
        f"{TEMPLATES}/nope", json={"templateCategory": "Ghost"}, headers=AUTH
    )
    assert missing.status_code == 404
    assert "Ghost" not in await _names(harness)
    blank = await harness.client.post(
        TEMPLATES,
        json={"name": "Blank", "templateCategory": " ", "channels": [{"channelType": "sms"}]},
        headers=AUTH,
    )
    assert blank.status_code == 400
    assert blank.json()["error"]["details"][0]["field"] == "templateCategory"


async def test_a_category_in_use_is_neither_deleted_nor_renamed(harness: Harness) -> None:
    await harness.create_template(approve=False, name="Receipt", templateCategory="Billing")
    await harness.client.delete(f"{TEMPLATES}/receipt", headers=AUTH)  # archived counts
    deleted = await harness.client.delete(f"{CATEGORIES}/billing", headers=AUTH)
    assert deleted.status_code == 409
    error = deleted.json()["error"]
    assert error["code"] == "ERR_CONFLICT"
    assert error["details"]["templateIds"] == ["receipt"]
    assert error["details"]["templates"] == 1
    renamed = await harness.client.put(
        f"{CATEGORIES}/billing", json={"name": "Payments", "description": "d"}, headers=AUTH
    )
    assert renamed.status_code == 409
    kept = await harness.client.get(f"{CATEGORIES}/billing", headers=AUTH)
    assert (kept.json()["data"]["name"], kept.json()["data"]["description"]) == ("Billing", None)
    # A description change of a category in use is fine.
    described = await harness.client.put(
        f"{CATEGORIES}/billing", json={"description": "Invoices"}, headers=AUTH
    )
    assert described.status_code == 200
    # Once the template moves, the category goes.
    moved = await harness.client.put(
        f"{TEMPLATES}/receipt", json={"templateCategory": "Transactional"}, headers=AUTH
    )
    assert moved.status_code == 200
    assert (await harness.client.delete(f"{CATEGORIES}/billing", headers=AUTH)).status_code == 200


async def test_the_categories_path_is_not_a_template_id(harness: Harness) -> None:
    listed = await harness.client.get(CATEGORIES, headers=AUTH)
    assert listed.status_code == 200
    assert "meta" in listed.json()
    reserved = await harness.client.post(
        TEMPLATES,
        json={"name": "X", "templateId": "categories", "channels": [{"channelType": "sms"}]},
        headers=AUTH,
    )
    assert reserved.status_code == 400
    assert reserved.json()["error"]["details"][0]["field"] == "templateId"
    generated = await harness.create_template(approve=False, name="Categories")
    assert generated["templateId"] == "categories_template"
    got = await harness.client.get(f"{TEMPLATES}/categories_template", headers=AUTH)
    assert got.status_code == 200


async def test_create_honours_the_idempotency_key(harness: Harness) -> None:
    headers = {**AUTH, "Idempotency-Key": "cat-1"}
    first = await _create(harness, headers, name="Billing")
    second = await _create(harness, headers, name="Billing")
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json() == second.json()
    other_body = await _create(harness, headers, name="Other")
    assert other_body.status_code == 409


async def test_concurrent_creates_of_one_name_make_one(harness: Harness) -> None:
    answers = await asyncio.gather(*(_create(harness, name="Billing") for _ in range(8)))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 7
    assert (await _names(harness)).count("Billing") == 1


async def test_unauthenticated_is_401(harness: Harness) -> None:
    response = await harness.client.get(CATEGORIES)
    assert response.status_code == 401


async def test_the_openapi_document_tells_what_each_category_operation_answers(
    harness: Harness,
) -> None:
    spec = (await harness.client.get("/openapi.json")).json()
    item = f"{CATEGORIES}/{{category_id}}"
    expected = {
        ("post", CATEGORIES): (
            {"201"},
            {"400", "401", "409", "413", "500"},
            "Data_CategoryPublic_",
        ),
        ("get", CATEGORIES): ({"200"}, {"400", "401", "500"}, "Listed_CategoryPublic_"),
        ("get", item): ({"200"}, {"400", "401", "404", "500"}, "Data_CategoryPublic_"),
        ("put", item): (
            {"200"},
            {"400", "401", "404", "409", "413", "500"},
            "Data_CategoryPublic_",
        ),
        ("delete", item): ({"200"}, {"400", "401", "404", "409", "500"}, "Data_Deleted_"),
    }
    for (method, path), (ok, errors, model) in expected.items():
        responses = spec["paths"][path][method]["responses"]
        assert {s for s in responses if s.startswith("2")} == ok, (method, path)
        assert {s for s in responses if not s.startswith("2")} == errors, (method, path)
        success = responses[next(iter(ok))]["content"]["application/json"]["schema"]
        assert success == {"$ref": f"#/components/schemas/{model}"}, (method, path)
    links = spec["paths"][CATEGORIES]["post"]["responses"]["201"]["links"]
    assert set(links) == {"GetCategory", "UpdateCategory", "DeleteCategory"}
    category = spec["components"]["schemas"]["CategoryPublic"]["properties"]
    assert {"id", "name", "description", "isDefault", "createdAt", "updatedAt"} == set(category)
    template_create = spec["components"]["schemas"]["TemplateCreate"]["properties"]
    assert "creates that category" in str(template_create["templateCategory"])
