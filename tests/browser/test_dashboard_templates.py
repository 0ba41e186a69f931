"""The dashboard's Templates pages in a real browser, on the real stack: find a
template, type a variable and watch the live preview change, approve the draft."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from clarion_devtools.devstack import DEV_DASHBOARD_EMAIL, DEV_DASHBOARD_PASSWORD, Stack
from clarion_devtools.helpers import random_ref

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@dataclass(frozen=True)
class Seeded:
    app_id: str
    api_key: str
    template_id: str


def _check(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def seeded(stack: Stack, admin_token: str) -> Seeded:
    """An app of its own with a draft template: a required and an optional variable."""
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        app = _check(
            http.post(
                "/admin/apps",
                json={"name": f"Templates {random_ref('app')}"},
                headers={"Authorization": f"Bearer {admin_token}"},
            ),
            201,
        )["data"]
        auth = {"apikey": app["apiKey"]}
        template = {
            "name": "Browser welcome",
            "channels": [
                {
                    "channelType": "in_app",
                    "content": {"title": "Hi {{name}}", "body": "Your plan: {{plan}}"},
                }
            ],
            "variableSchema": [
                {"key": "name", "type": "string", "required": True},
                {"key": "plan", "type": "string", "defaultValue": "Free"},
            ],
        }
        created = _check(http.post("/v3/campaigns/templates", json=template, headers=auth), 201)
    return Seeded(app["appId"], app["apiKey"], created["data"]["templateId"])


def _sign_in(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.gateway_url}/dashboard")
    page.get_by_label("Email").fill(DEV_DASHBOARD_EMAIL)
    page.get_by_label("Password").fill(DEV_DASHBOARD_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your apps")).to_be_visible()


def test_typing_a_variable_changes_the_preview_and_approve(
    page: Page, stack: Stack, seeded: Seeded
) -> None:
    _sign_in(page, stack)
    page.goto(f"{stack.gateway_url}/dashboard/apps/{seeded.app_id}/templates")
    rows = page.locator("#templates-results tbody tr")
    expect(rows).to_have_count(1)
    page.get_by_label("Search").fill("no such template")
    expect(rows).to_have_count(0)
    page.get_by_label("Search").fill("welcome")
    expect(rows).to_have_count(1)
    page.get_by_role("link", name="Browser welcome").click()
    expect(page.get_by_role("heading", name=re.compile("Browser welcome"))).to_be_visible()

    preview = page.locator("#template-preview")
    expect(preview).to_contain_text("Fill in name to see the content.")
    page.get_by_label("name", exact=True).fill("Grace")
    expect(preview).to_contain_text("Hi Grace")
    expect(preview).to_contain_text("Your plan: Free")
    page.get_by_label("plan", exact=True).fill("<b>Pro</b>")
    expect(preview).to_contain_text("Your plan: <b>Pro</b>")  # shown as text, not markup
    expect(preview.locator("b")).to_have_count(0)

    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text("Version 1 is approved")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        stored = _check(
            http.get(
                f"/v3/campaigns/templates/{seeded.template_id}",
                headers={"apikey": seeded.api_key},
            ),
            200,
        )
    assert stored["data"]["status"] == "approved"
