"""The dashboard's "New campaign" in a real browser, on the real stack (issue 10, item 5):
sign in, create a campaign, upload a CSV with a rejected row and see its dry run show it
and offer it for download, confirm the import, "Send now", and watch the Campaign detail
page reach ``completed`` live; the screenshot of that page is the README's."""

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
from playwright.sync_api import FilePayload, Page, expect

from clarion_devtools.devstack import DEV_DASHBOARD_EMAIL, DEV_DASHBOARD_PASSWORD, Stack
from clarion_devtools.helpers import random_ref

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

Screenshot = Callable[[Page, str], Path]  # the conftest's screenshot fixture
USERS = 6
COMPLETION_TIMEOUT_MS = 60_000


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
    """An app of its own with six users, an in-app channel and an approved in-app
    template whose ``name`` variable the CSV fills in."""
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        app = _check(
            http.post(
                "/admin/apps",
                json={"name": "Spring shop"},
                headers={"Authorization": f"Bearer {admin_token}"},
            ),
            201,
        )["data"]
        auth = {"apikey": app["apiKey"]}
        prefix = random_ref("c").replace("-", "")[:12]
        users = [{"uid": f"{prefix}-{n}", "name": f"Person {n}"} for n in range(1, USERS + 1)]
        _check(http.post("/v3/users/import", json={"users": users}, headers=auth), 200)
        channel = {"name": "In-app", "type": "in_app", "enabled": True}
        _check(http.post("/v3/campaigns/channels", json=channel, headers=auth), 201)
        template = {
            "name": "Spring sale",
            "channels": [
                {
                    "channelType": "in_app",
                    "content": {"title": "Hi {{name}}", "body": "Our spring sale is on"},
                }
            ],
            "variableSchema": [{"key": "name", "type": "string", "defaultValue": "there"}],
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
    """htmx has answered and settled what it swapped in (see test_dashboard_users)."""
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling")).to_have_count(0)


def _audience_csv(prefix: str) -> bytes:
    """Four users with a name each, one of them twice, and a uid no user has."""
    rows = ["user_id,name"]
    rows += [f"{prefix}-{n},Friend {n}" for n in range(1, 5)]
    rows += [f"{prefix}-ghost,Nobody", f"{prefix}-2,Again"]
    return ("\n".join(rows) + "\n").encode()


def test_a_campaign_from_a_csv_is_sent_and_watched_to_completed(
    page: Page, stack: Stack, seeded: Seeded, screenshot: Screenshot
) -> None:
    _sign_in(page, stack)
    page.goto(f"{stack.gateway_url}/dashboard/apps/{seeded.app_id}/campaigns")
    expect(page.get_by_text("This app has no campaigns yet.")).to_be_visible()
    page.get_by_role("button", name="New campaign").click()
    page.get_by_label("Name").fill("Spring sale")
    page.get_by_label("Template").select_option(seeded.template_id)
    _htmx_idle(page)
    expect(page.get_by_label("Version")).to_have_value("1")
    page.get_by_role("button", name="Create campaign").click()
    expect(page).to_have_url(re.compile(r"/campaigns/cmp_\w+/audience$"))
    campaign_id = page.url.rsplit("/", 2)[1]

    # The upload: its dry run arrives over server-sent events, nothing added yet.
    upload = FilePayload(
        name="audience.csv", mimeType="text/csv", buffer=_audience_csv(seeded.prefix)
    )
    page.get_by_label("CSV file").set_input_files(files=[upload])
    page.get_by_role("button", name="Upload and check").click()
    panel = page.locator("#csv-panel")
    expect(panel).to_contain_text("What importing this file would do")
    stats = panel.locator("dl.stats")
    expect(stats).to_contain_text("Rows6")
    expect(stats).to_contain_text("Would be added4")
    expect(stats).to_contain_text("Duplicates1")
    expect(stats).to_contain_text("Rejected1")
    rejected = panel.locator("table.rejected tbody tr")
    expect(rejected).to_have_count(1)
    expect(rejected).to_contain_text(f"{seeded.prefix}-ghost")
    expect(rejected).to_contain_text("No such user.")
    expect(page.locator("#audience-count")).to_have_text("0")

    with page.expect_download() as download_info:
        panel.get_by_role("link", name="Download the rejected rows (CSV)").click()
    downloaded = Path(download_info.value.path()).read_text()
    lines = list(csv.reader(io.StringIO(downloaded)))
    assert lines == [
        ["row", "user_id", "code", "message"],
        ["6", f"{seeded.prefix}-ghost", "ERR_USER_NOT_FOUND", "No such user."],
    ]

    _htmx_idle(page)
    page.get_by_role("button", name="Confirm import").click()
    expect(panel).to_contain_text("Imported 4 recipients from 6 rows")
    expect(page.locator("#audience-count")).to_have_text("4")  # swapped out of band

    page.get_by_role("button", name="Send now").click()
    detail = f"/dashboard/apps/{seeded.app_id}/campaigns/{campaign_id}"
    expect(page).to_have_url(re.compile(re.escape(detail) + "$"))
    # The detail page follows the campaign over server-sent events: no reload here.
    expect(page.locator("#campaign-status")).to_have_text(
        "completed", timeout=COMPLETION_TIMEOUT_MS
    )
    screenshot(page, "dashboard-live-campaign")

    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        auth = {"apikey": seeded.api_key}
        campaign = _check(http.get(f"/v3/campaigns/campaigns/{campaign_id}", headers=auth), 200)
        feed = _check(
            http.get(
                "/v3/campaigns/notification-feed",
                headers={**auth, "onbehalfof": f"{seeded.prefix}-3"},
            ),
            200,
        )
    assert campaign["data"]["status"] == "completed"
    assert campaign["data"]["totalTargets"] == 4
    assert [item["content"]["title"] for item in feed["data"]] == ["Hi Friend 3"]
    assert seeded.api_key not in page.content()
