"""The dashboard's Users and User detail pages in a real browser, on the real stack:
sign in, search and filter users, page through them, and send from a user's page; the
item then shows in that user's feed through the public API."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from clarion_devtools.devstack import DEV_DASHBOARD_EMAIL, DEV_DASHBOARD_PASSWORD, Stack
from clarion_devtools.helpers import random_ref

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

Screenshot = Callable[[Page, str], Path]  # the conftest's screenshot fixture
USERS = 25  # more than a page of 20


@dataclass(frozen=True)
class Seeded:
    app_id: str
    api_key: str
    prefix: str
    template_id: str


def _check(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def seeded(stack: Stack, admin_token: str) -> Seeded:
    """An app of its own (the first operator owns every app) with 25 users, every third
    a "vip" and every fourth online, an in-app channel and an approved template."""
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        app = _check(
            http.post(
                "/admin/apps",
                json={"name": f"Browser {random_ref('app')}"},
                headers={"Authorization": f"Bearer {admin_token}"},
            ),
            201,
        )["data"]
        auth = {"apikey": app["apiKey"]}
        prefix = random_ref("u").replace("-", "")[:12]
        users = [
            {
                "uid": f"{prefix}-{n:02d}",
                "name": f"Person {n:02d}",
                "role": "vip" if n % 3 == 0 else "default",
                "status": "online" if n % 4 == 0 else "offline",
            }
            for n in range(1, USERS + 1)
        ]
        _check(http.post("/v3/users/import", json={"users": users}, headers=auth), 200)
        channel = {"name": "In-app", "type": "in_app", "enabled": True}
        _check(http.post("/v3/campaigns/channels", json=channel, headers=auth), 201)
        template = {
            "name": "Browser hello",
            "channels": [
                {
                    "channelType": "in_app",
                    "content": {"title": "Hi {{name}}", "body": "From the dashboard"},
                }
            ],
            "variableSchema": [{"key": "name", "type": "string", "required": True}],
        }
        created = _check(http.post("/v3/campaigns/templates", json=template, headers=auth), 201)
        template_id = created["data"]["templateId"]
        approve = {"status": "approved"}
        _check(http.put(f"/v3/campaigns/templates/{template_id}", json=approve, headers=auth), 200)
    return Seeded(app["appId"], app["apiKey"], prefix, template_id)


def _sign_in(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.gateway_url}/dashboard")
    expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))
    page.get_by_label("Email").fill(DEV_DASHBOARD_EMAIL)
    page.get_by_label("Password").fill(DEV_DASHBOARD_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your apps")).to_be_visible()


def _htmx_idle(page: Page) -> None:
    """htmx has answered and processed what it swapped in (its handlers are attached
    once the settle step ends): a person cannot act faster, a test can."""
    # A locator, not wait_for_function: the page's CSP refuses evaluated strings.
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling")).to_have_count(0)


def _rows(page: Page) -> Any:
    return page.locator("#users-results tbody tr")


def test_users_search_filters_and_paging(
    page: Page, stack: Stack, seeded: Seeded, screenshot: Screenshot
) -> None:
    _sign_in(page, stack)
    page.goto(f"{stack.gateway_url}/dashboard/apps/{seeded.app_id}/users")
    expect(_rows(page)).to_have_count(20)
    expect(page.get_by_text(f"{USERS} users · page 1 of 2")).to_be_visible()
    page.get_by_role("link", name="Next").click()
    expect(_rows(page)).to_have_count(USERS - 20)
    expect(page).to_have_url(re.compile(r"page=2"))  # htmx pushed the URL

    page.goto(f"{stack.gateway_url}/dashboard/apps/{seeded.app_id}/users")
    page.get_by_label("Search").fill(f"{seeded.prefix}-1")  # 10-19
    expect(_rows(page)).to_have_count(10)
    page.get_by_label("Search").fill("")
    page.get_by_label("Role").select_option("vip")
    expect(_rows(page)).to_have_count(USERS // 3)
    page.get_by_label("Status").select_option("online")
    expect(_rows(page)).to_have_count(2)  # 12 and 24
    expect(_rows(page).first).to_contain_text(f"{seeded.prefix}-12")
    page.get_by_label("Per page").select_option("10")
    expect(page).to_have_url(re.compile(r"role=vip.*status=online.*perPage=10"))
    screenshot(page, "dashboard-users")


def test_a_send_from_the_user_detail_reaches_the_feed(
    page: Page, stack: Stack, seeded: Seeded, screenshot: Screenshot
) -> None:
    uid = f"{seeded.prefix}-07"
    _sign_in(page, stack)
    page.goto(f"{stack.gateway_url}/dashboard/apps/{seeded.app_id}/users")
    page.get_by_role("link", name=uid).click()
    expect(page.get_by_role("heading", name=re.compile("Person 07"))).to_be_visible()
    page.get_by_role("button", name="Send notification").click()
    expect(page).to_have_url(re.compile(r"/send$"))
    _htmx_idle(page)
    page.get_by_label("Template").select_option(seeded.template_id)
    expect(page.locator("#send-preview")).to_contain_text("Fill in name")
    _htmx_idle(page)
    page.get_by_label("name", exact=True).fill("Grace")
    expect(page.locator("#send-preview")).to_contain_text("Hi Grace")
    page.get_by_role("button", name="Send", exact=True).click()
    result = page.get_by_role("status")
    expect(result).to_contain_text("sent")
    expect(result.locator("tbody tr")).to_have_count(1)
    expect(result).to_contain_text("in_app")
    screenshot(page, "dashboard-user-send")

    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        feed = _check(
            http.get(
                "/v3/campaigns/notification-feed",
                headers={"apikey": seeded.api_key, "onbehalfof": uid},
            ),
            200,
        )
    titles = [item["content"]["title"] for item in feed["data"]]
    assert titles == ["Hi Grace"]
    assert seeded.api_key not in page.content()
