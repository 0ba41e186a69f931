"""The dashboard's Webhooks pages in a real browser, on the real stack: an owner adds a
webhook (its secret shown once), a send's event fails at the receiver until its retries
run out, "Retry" sends it again once the receiver is back, and the webhook is deleted
after its confirmation step."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from clarion_devtools.devstack import DEV_DASHBOARD_EMAIL, DEV_DASHBOARD_PASSWORD, Stack
from clarion_devtools.helpers import random_ref
from clarion_shared.http import INTERNAL_TOKEN_HEADER

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

Screenshot = Callable[[Page, str], Path]  # the conftest's screenshot fixture
# The stack retries webhooks after 1,1,1,2,2,2,3 s (tests/conftest.py): failed in ~15 s.
DELIVERY_DEADLINE_S = 90.0


class _Receiver(ThreadingHTTPServer):
    """A webhook receiver on 127.0.0.1 that answers ``status`` and counts calls."""

    status = 500
    calls = 0


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.server.calls += 1
        self.send_response(self.server.status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def receiver() -> Iterator[_Receiver]:
    server = _Receiver(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@dataclass(frozen=True)
class Seeded:
    app_id: str
    api_key: str
    uid: str
    template_id: str


def _check(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def seeded(stack: Stack, admin_token: str) -> Seeded:
    """An app of its own with a user, an in-app channel and an approved template."""
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        app = _check(
            http.post(
                "/admin/apps",
                json={"name": f"Hooks {random_ref('app')}"},
                headers={"Authorization": f"Bearer {admin_token}"},
            ),
            201,
        )["data"]
        auth = {"apikey": app["apiKey"]}
        uid = random_ref("u").replace("-", "")[:12]
        _check(http.post("/v3/users", json={"uid": uid, "name": "Ada"}, headers=auth), 200)
        channel = {"name": "In-app", "type": "in_app", "enabled": True}
        _check(http.post("/v3/campaigns/channels", json=channel, headers=auth), 201)
        template = {
            "name": "Hook hello",
            "channels": [{"channelType": "in_app", "content": {"title": "Hi", "body": "There"}}],
        }
        created = _check(http.post("/v3/campaigns/templates", json=template, headers=auth), 201)
        template_id = created["data"]["templateId"]
        approve = {"status": "approved"}
        _check(http.put(f"/v3/campaigns/templates/{template_id}", json=approve, headers=auth), 200)
    return Seeded(app["appId"], app["apiKey"], uid, template_id)


def _sign_in(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.gateway_url}/dashboard")
    page.get_by_label("Email").fill(DEV_DASHBOARD_EMAIL)
    page.get_by_label("Password").fill(DEV_DASHBOARD_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your apps")).to_be_visible()


def _deliveries(stack: Stack, seeded: Seeded, webhook_id: str, status: str) -> list[Any]:
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        found = _check(
            http.get(
                f"/v3/webhooks/{webhook_id}/deliveries",
                params={"status": status},
                headers={"apikey": seeded.api_key},
            ),
            200,
        )
    return list(found["data"])


def _wait_for(stack: Stack, seeded: Seeded, webhook_id: str, status: str) -> list[Any]:
    """The webhook's deliveries in ``status``, once there is one (with a deadline)."""
    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    while time.monotonic() < deadline:
        found = _deliveries(stack, seeded, webhook_id, status)
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"no {status} delivery within {DELIVERY_DEADLINE_S} s")


def _wait_known(stack: Stack, seeded: Seeded, webhook_id: str) -> None:
    """The emitter has the webhook's configuration (it travels over Kafka)."""
    env = stack.env_of("webhook-emitter")
    url = (
        f"http://127.0.0.1:{env['CLARION_WEBHOOKS_PORT']}"
        f"/internal/apps/{seeded.app_id}/webhooks/{webhook_id}"
    )
    headers = {INTERNAL_TOKEN_HEADER: env["CLARION_INTERNAL_TOKEN"]}
    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    while httpx.get(url, headers=headers, timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the emitter never learned the webhook"
        time.sleep(0.2)


def _send(stack: Stack, seeded: Seeded) -> None:
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        body = {"templateId": seeded.template_id, "receivers": [seeded.uid]}
        sent = http.post(
            "/v3/campaigns/notifications/messages", json=body, headers={"apikey": seeded.api_key}
        )
        _check(sent, 200)


def test_an_owner_adds_a_webhook_retries_a_failed_delivery_and_deletes_it(
    page: Page, stack: Stack, seeded: Seeded, receiver: _Receiver, screenshot: Screenshot
) -> None:
    _sign_in(page, stack)
    webhooks = f"{stack.gateway_url}/dashboard/apps/{seeded.app_id}/webhooks"
    page.goto(webhooks)
    expect(page.get_by_text("No webhooks yet.")).to_be_visible()
    page.get_by_role("link", name="New webhook").click()
    page.get_by_label("Name", exact=True).fill("Orders")
    page.get_by_label("URL").fill(f"http://127.0.0.1:{receiver.server_port}/hook")
    page.get_by_label("after_notification_created").check()
    page.get_by_role("button", name="Create webhook").click()
    secret = page.get_by_role("textbox", name="Signing secret")
    expect(secret).to_have_value(re.compile(r"^whsec_"))
    shown = secret.input_value()
    # The address is the webhook's page now: a reload reads it, without the secret.
    expect(page).to_have_url(re.compile(r"/webhooks/wh_[0-9a-f]+$"))
    webhook_id = page.url.rsplit("/", 1)[1]
    page.reload()
    expect(page.get_by_role("heading", name=re.compile("Orders"))).to_be_visible()
    expect(page.get_by_role("textbox", name="Signing secret")).to_have_count(0)
    assert shown not in page.content()

    # The receiver fails every attempt: the delivery ends failed.
    _wait_known(stack, seeded, webhook_id)
    _send(stack, seeded)
    _wait_for(stack, seeded, webhook_id, "failed")
    page.reload()
    page.get_by_label("Status").select_option("failed")
    expect(page).to_have_url(re.compile(r"status=failed"))
    row = page.locator("#webhook-deliveries tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("after_notification_created")
    expect(row).to_contain_text("HTTP 500")
    screenshot(page, "dashboard-webhooks")

    receiver.status = 200
    row.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("status")).to_contain_text("will be sent again now")
    _wait_for(stack, seeded, webhook_id, "succeeded")

    page.get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", name=re.compile("Delete webhook"))).to_be_visible()
    page.get_by_role("button", name="Delete webhook").click()
    expect(page.get_by_role("status")).to_contain_text("Webhook deleted")
    expect(page.get_by_text("No webhooks yet.")).to_be_visible()
    assert seeded.api_key not in page.content()
