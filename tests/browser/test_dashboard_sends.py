"""The dashboard's Sends page in a real browser, on the real stack: a batch of 13
receivers (one uid the directory does not have) sent through the public API is listed,
its page shows each receiver's status and the failure's reason, the Status filter
narrows them, and "Download CSV" gives the same rows without an API key."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from clarion_devtools.devstack import DEV_DASHBOARD_EMAIL, DEV_DASHBOARD_PASSWORD, Stack
from clarion_devtools.helpers import random_ref

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

Screenshot = Callable[[Page, str], Path]  # the conftest's screenshot fixture
USERS = 12
DEADLINE_MS = 60_000  # a batch is fanned out and decided well within this


@dataclass(frozen=True)
class Seeded:
    app_id: str
    api_key: str
    uids: list[str]
    ghost: str
    batch_id: str


def _check(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def seeded(stack: Stack, admin_token: str) -> Seeded:
    """An app of its own with 12 users, an in-app channel and an approved template,
    and a batch sent to the 12 and to a uid the app does not have."""
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        app = _check(
            http.post(
                "/admin/apps",
                json={"name": f"Shop {random_ref('app')}"},
                headers={"Authorization": f"Bearer {admin_token}"},
            ),
            201,
        )["data"]
        auth = {"apikey": app["apiKey"]}
        prefix = random_ref("s").replace("-", "")[:12]
        uids = [f"{prefix}-{n:02d}" for n in range(1, USERS + 1)]
        users = [{"uid": uid, "name": f"Person {uid[-2:]}"} for uid in uids]
        _check(http.post("/v3/users/import", json={"users": users}, headers=auth), 200)
        channel = {"name": "In-app", "type": "in_app", "enabled": True}
        _check(http.post("/v3/campaigns/channels", json=channel, headers=auth), 201)
        template = {
            "name": "Weekly digest",
            "channels": [
                {"channelType": "in_app", "content": {"title": "Your week", "body": "Hello"}}
            ],
        }
        created = _check(http.post("/v3/campaigns/templates", json=template, headers=auth), 201)
        template_id = created["data"]["templateId"]
        approve = {"status": "approved"}
        _check(http.put(f"/v3/campaigns/templates/{template_id}", json=approve, headers=auth), 200)
        ghost = f"{prefix}-ghost"
        send = {"templateId": template_id, "receivers": [*uids, ghost]}
        sent = _check(
            http.post("/v3/campaigns/notifications/messages", json=send, headers=auth), 200
        )["data"]
    assert (sent["mode"], sent["total"]) == ("batch", USERS + 1)
    return Seeded(app["appId"], app["apiKey"], uids, ghost, sent["batchId"])


def _sign_in(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.gateway_url}/dashboard")
    expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))
    page.get_by_label("Email").fill(DEV_DASHBOARD_EMAIL)
    page.get_by_label("Password").fill(DEV_DASHBOARD_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your apps")).to_be_visible()


def _rows(page: Page) -> Any:
    return page.locator("#send-receivers tbody tr")


def test_the_sends_page_shows_a_batchs_receivers(
    page: Page, stack: Stack, seeded: Seeded, screenshot: Screenshot
) -> None:
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # Chromium asks for /favicon.ico on its own; the dashboard has none.
        if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
            errors.append(f"{message.text} ({message.location['url']})")

    page.on("console", on_console)
    _sign_in(page, stack)
    page.goto(f"{stack.gateway_url}/dashboard/apps/{seeded.app_id}/sends")
    sends = page.locator("#sends-results tbody tr")
    expect(sends).to_have_count(1)
    expect(sends.first).to_contain_text("batch")
    expect(sends.first).to_contain_text("Weekly digest")

    page.get_by_role("link", name=seeded.batch_id).click()
    expect(page.get_by_role("heading", name=re.compile("Batch"))).to_contain_text(seeded.batch_id)
    # Final within the deadline: at once, or (the page opened earlier) pushed over
    # server-sent events; the page never polls.
    progress = page.locator("#send-progress")
    expect(progress).to_contain_text("partially failed", timeout=DEADLINE_MS)
    expect(progress).to_contain_text(f"{USERS + 1} of {USERS + 1} receivers final")
    expect(_rows(page)).to_have_count(USERS + 1)
    ghost = _rows(page).filter(has_text=seeded.ghost)
    expect(ghost).to_contain_text("failed")
    expect(ghost).to_contain_text(f"User {seeded.ghost} does not exist.")
    expect(ghost).to_contain_text("ERR_USER_NOT_FOUND")
    sent = _rows(page).filter(has_text=seeded.uids[0])
    expect(sent.get_by_text("sent", exact=True).first).to_be_visible()
    screenshot(page, "dashboard-send-detail")

    page.get_by_label("Status").select_option("failed")
    expect(_rows(page)).to_have_count(1)
    expect(_rows(page).first).to_contain_text(seeded.ghost)
    expect(page).to_have_url(re.compile(r"status=failed"))  # htmx pushed the URL
    page.get_by_label("Status").select_option("sent")
    expect(_rows(page)).to_have_count(USERS)

    download = page.get_by_role("link", name="Download CSV")
    expect(download).to_have_attribute("href", re.compile(r"/receivers\.csv\?status=sent$"))
    exported = page.request.get(f"{stack.gateway_url}{download.get_attribute('href')}")
    assert exported.status == 200
    header, *rows = list(csv.reader(io.StringIO(exported.text())))
    assert header[:4] == ["uid", "channel_type", "channel_id", "status"]
    assert sorted(row[0] for row in rows) == sorted(seeded.uids)
    assert seeded.api_key not in page.content()
    assert errors == []
