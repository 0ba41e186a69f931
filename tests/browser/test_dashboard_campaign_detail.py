"""The dashboard's Campaign detail page in a real browser, on the real stack: a campaign
sent through the API while its page is open is watched to ``completed`` without a
reload (server-sent events swapped in by htmx), and a scheduled campaign is cancelled
from its page after the browser's confirmation."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Dialog, Frame, Page, expect

from clarion_devtools.devstack import DEV_DASHBOARD_EMAIL, DEV_DASHBOARD_PASSWORD, Stack
from clarion_devtools.helpers import random_ref

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

Screenshot = Callable[[Page, str], Path]  # the conftest's screenshot fixture
USERS = 12  # a batch: more than a realtime send's 10
FAR_FUTURE = 4_000_000_000


@dataclass(frozen=True)
class Seeded:
    app_id: str
    api_key: str
    uids: list[str]
    template_id: str


def _check(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def seeded(stack: Stack, admin_token: str) -> Seeded:
    """An app of its own with 12 users, an in-app channel and an approved template."""
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        app = _check(
            http.post(
                "/admin/apps",
                json={"name": f"Campaign detail {random_ref('app')}"},
                headers={"Authorization": f"Bearer {admin_token}"},
            ),
            201,
        )["data"]
        auth = {"apikey": app["apiKey"]}
        prefix = random_ref("c").replace("-", "")[:12]
        uids = [f"{prefix}-{n:02d}" for n in range(1, USERS + 1)]
        users = [{"uid": uid, "name": f"Person {uid[-2:]}"} for uid in uids]
        _check(http.post("/v3/users/import", json={"users": users}, headers=auth), 200)
        channel = {"name": "In-app", "type": "in_app", "enabled": True}
        _check(http.post("/v3/campaigns/channels", json=channel, headers=auth), 201)
        template = {
            "name": "Spring news",
            "channels": [
                {"channelType": "in_app", "content": {"title": "Spring", "body": "Is here"}}
            ],
        }
        created = _check(http.post("/v3/campaigns/templates", json=template, headers=auth), 201)
        template_id = created["data"]["templateId"]
        approve = {"status": "approved"}
        _check(http.put(f"/v3/campaigns/templates/{template_id}", json=approve, headers=auth), 200)
    return Seeded(app["appId"], app["apiKey"], uids, template_id)


def _campaign(stack: Stack, seeded: Seeded, name: str) -> str:
    """A draft campaign of the seeded users."""
    auth = {"apikey": seeded.api_key}
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        body = {"name": name, "templateId": seeded.template_id, "templateVersion": 1}
        campaign_id: str = _check(
            http.post("/v3/campaigns/campaigns", json=body, headers=auth), 201
        )["data"]["id"]
        _check(
            http.post(
                f"/v3/campaigns/campaigns/{campaign_id}/recipients",
                json={"userIds": seeded.uids},
                headers=auth,
            ),
            201,
        )
    return campaign_id


def _api(stack: Stack, seeded: Seeded, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        response = http.request(
            method, f"/v3/campaigns/campaigns/{path}", headers={"apikey": seeded.api_key}, **kwargs
        )
    return _check(response, 200)


def _sign_in(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.gateway_url}/dashboard")
    expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))
    page.get_by_label("Email").fill(DEV_DASHBOARD_EMAIL)
    page.get_by_label("Password").fill(DEV_DASHBOARD_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your apps")).to_be_visible()


def test_a_campaign_is_watched_live_to_completed(
    page: Page, stack: Stack, seeded: Seeded, screenshot: Screenshot
) -> None:
    campaign_id = _campaign(stack, seeded, "Spring news")
    _sign_in(page, stack)
    page.goto(f"{stack.gateway_url}/dashboard/apps/{seeded.app_id}/campaigns/{campaign_id}")
    status = page.locator("#campaign-status")
    expect(status).to_have_text("draft")
    # "Live" shows once the stream's first fragment was swapped in: the page follows it.
    expect(page.locator(".live-note")).to_have_text("Live")
    navigations: list[str] = []

    def navigated(frame: Frame) -> None:
        if frame == page.main_frame:
            navigations.append(frame.url)

    page.on("framenavigated", navigated)

    _api(stack, seeded, "POST", f"{campaign_id}/send")

    expect(status).to_have_text("completed", timeout=30_000)
    expect(page.get_by_text(f"{USERS} of {USERS} recipients done (100%)")).to_be_visible()
    expect(page.locator(".live-note")).to_have_count(0)  # the stream ended
    # The table and the channels were read again when the stream said "done".
    rows = page.locator("#campaign-recipients tbody tr")
    expect(rows).to_have_count(USERS)
    expect(rows.locator(".badge.completed")).to_have_count(USERS)
    expect(page.locator("#campaign-channels tbody")).to_contain_text(str(USERS))
    assert navigations == []  # all of it without a reload
    page.remove_listener("framenavigated", navigated)

    page.get_by_label("Status").select_option("failed")
    expect(page.get_by_text("No recipient is failed.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"status=failed"))  # htmx pushed the URL
    page.get_by_label("Status").select_option("")
    expect(rows).to_have_count(USERS)
    screenshot(page, "dashboard-campaign-detail")
    assert seeded.api_key not in page.content()


def test_a_scheduled_campaign_is_cancelled_after_confirmation(
    page: Page, stack: Stack, seeded: Seeded
) -> None:
    campaign_id = _campaign(stack, seeded, "Autumn news")
    _api(stack, seeded, "POST", f"{campaign_id}/schedule", json={"scheduledAt": FAR_FUTURE})
    _sign_in(page, stack)
    page.goto(f"{stack.gateway_url}/dashboard/apps/{seeded.app_id}/campaigns/{campaign_id}")
    status = page.locator("#campaign-status")
    expect(status).to_have_text("scheduled")
    questions: list[str] = []

    def answer(dialog: Dialog, accept: bool) -> None:
        questions.append(dialog.message)
        if accept:
            dialog.accept()
        else:
            dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, False))
    page.get_by_role("button", name="Cancel campaign").click()
    expect(status).to_have_text("scheduled")
    assert questions == [
        "Cancel the campaign “Autumn news”? It will not be sent, and this cannot be undone."
    ]
    assert _api(stack, seeded, "GET", campaign_id)["data"]["status"] == "scheduled"

    page.once("dialog", lambda dialog: answer(dialog, True))
    page.get_by_role("button", name="Cancel campaign").click()
    expect(status).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel campaign")).to_have_count(0)
    assert _api(stack, seeded, "GET", campaign_id)["data"]["status"] == "cancelled"
