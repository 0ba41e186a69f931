"""The Webhooks pages: endpoints through ``/v3/webhooks``'s use cases (the outbox
publishes every change), their deliveries, "Retry" and replays through the
webhook-emitter's internal API (a fake one on the harness's peer transport), owners
only for changes, every change audited, the signing secret shown once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from clarion_gateway.dashboard.webhooks import TRIGGER_HINTS, in_words, replay_range
from clarion_gateway.testing import ADMIN, AUTH, DEV_APP, Browser, Harness, sign_in
from clarion_gateway.webhooks.domain import Webhook, check_url
from clarion_shared.contracts.config_webhooks import TRIGGERS
from clarion_shared.contracts.webhook_state import WebhookDisabled
from clarion_shared.errors import Invalid

PAGES = f"/dashboard/apps/{DEV_APP}/webhooks"
PASSWORD = "a long passphrase"


def _attempt(at: int, status_code: int | None, error: str | None = None) -> dict[str, Any]:
    return {
        "at": at,
        "statusCode": status_code,
        "error": error,
        "durationMs": 12,
        "response": "oops" if status_code else None,
        "trigger": "schedule",
    }


def _delivery(delivery_id: str, status: str, attempts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": delivery_id,
        "webhookId": "wh",
        "trigger": "after_batch_completed",
        "status": status,
        "attempts": attempts,
        "nextAttemptAt": 1_700_000_600 if status == "pending" else None,
        "payload": {"trigger": "after_batch_completed"},
        "createdAt": 1_700_000_000,
        "updatedAt": 1_700_000_100,
    }


FAILED = _delivery(
    "msg_failed", "failed", [_attempt(1_700_000_000, 500), _attempt(1, None, "timeout")]
)
PENDING = _delivery("msg_pending", "pending", [_attempt(1_700_000_000, 503)])
SUCCEEDED = _delivery("msg_ok", "succeeded", [_attempt(1_700_000_000, 200)])


def _emitter(request: httpx.Request) -> httpx.Response:
    """The webhook-emitter's internal API, as far as these pages go."""
    path = request.url.path
    if path.endswith("/replay"):
        body = json.loads(request.content)
        accepted = {"webhookId": "wh", "since": body["since"], "until": body["until"], "count": 3}
        return httpx.Response(202, json={"data": accepted})
    if path.endswith("/msg_pending/retry"):
        error = {
            "code": "ERR_CONFLICT",
            "message": "This delivery is pending: it will be attempted on its schedule.",
        }
        return httpx.Response(409, json={"error": error})
    if path.endswith("/msg_failed/retry"):
        return httpx.Response(202, json={"data": {**FAILED, "status": "pending"}})
    if path.endswith("/deliveries"):
        query = parse_qs(request.url.query.decode())
        page, per_page = int(query["page"][0]), int(query["perPage"][0])
        items = [PENDING, FAILED, SUCCEEDED]
        pagination = {
            "total": 45,
            "count": len(items),
            "per_page": per_page,
            "current_page": page,
            "total_pages": -(-45 // per_page),
        }
        return httpx.Response(200, json={"data": items, "meta": {"pagination": pagination}})
    return httpx.Response(404, json={"error": {"code": "ERR_NOT_FOUND", "message": "No."}})


def _down(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


async def _api_webhook(harness: Harness, headers: dict[str, str] = AUTH, **body: Any) -> str:
    body.setdefault("name", "Orders")
    body.setdefault("webhookURL", "https://hooks.example.com/in")
    body.setdefault("triggers", ["after_batch_completed"])
    response = await harness.client.post("/v3/webhooks", json=body, headers=headers)
    assert response.status_code == 201, response.text
    webhook_id: str = response.json()["data"]["id"]
    return webhook_id


async def _stored(harness: Harness, webhook_id: str, app_id: str = DEV_APP) -> Webhook | None:
    found = await harness.store.webhooks.stored(app_id, webhook_id)
    return found if isinstance(found, Webhook) else None


async def _auto_disable(harness: Harness, webhook_id: str) -> None:
    current = await _stored(harness, webhook_id)
    assert current is not None
    await harness.webhook_states.deliver(
        WebhookDisabled(
            event_id=f"ev-{webhook_id}",
            app_id=DEV_APP,
            webhook_id=webhook_id,
            reason="gone",
            detail="the endpoint answered 410",
            disabled_at=1_700_000_000,
            config_updated_at=current.updated_at,
        )
    )


def _form(**fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "Orders",
        "webhookURL": "https://hooks.example.com/orders",
        "triggers": ["after_batch_completed", "after_delivery_failed"],
        "enabled": "true",
    }
    values.update(fields)
    return {k: v for k, v in values.items() if v is not None}


def _audit(harness: Harness, action: str) -> list[Any]:
    return [e for e in harness.store.audit.entries if e.action == action]


@asynccontextmanager
async def _as(harness: Harness, role: str) -> AsyncIterator[Browser]:
    """Another operator, with ``role`` in the dev app, in a browser of its own."""
    email = f"{role}@example.com"
    body = {"email": email, "password": PASSWORD, "roles": {DEV_APP: role}}
    created = await harness.client.post("/admin/operators", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    transport = httpx.ASGITransport(app=harness.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield await sign_in(client, email, PASSWORD)


async def test_an_empty_app_explains_webhooks_and_offers_a_new_one(harness: Harness) -> None:
    await sign_in(harness.client)
    page = await harness.client.get(PAGES)
    assert page.status_code == 200
    assert "No webhooks yet." in page.text
    assert "Clarion calls when something happens in this app" in page.text
    assert f'<a class="button" href="{PAGES}/new">New webhook</a>' in page.text


async def test_the_list_shows_each_endpoint_and_its_state(harness: Harness) -> None:
    first = await _api_webhook(harness, triggers=["after_feed_item_read", "after_batch_completed"])
    await _api_webhook(harness, name="Paused", enabled=False)
    gone = await _api_webhook(harness, name="Gone one", webhookURL="https://gone.example.com/")
    await _auto_disable(harness, gone)
    await sign_in(harness.client)
    page = await harness.client.get(PAGES)
    html = page.text
    assert f'<a href="{PAGES}/{first}">Orders</a>' in html
    assert "https://hooks.example.com/in" in html
    assert '<li class="mono">after_feed_item_read</li>' in html
    assert html.count('<span class="badge enabled">Enabled</span>') == 1
    assert '<span class="badge disabled">Disabled</span>' in html
    assert '<span class="badge failed">Disabled by failures</span>' in html
    assert "New webhook</a>" in html
    detail = await harness.client.get(f"{PAGES}/{gone}")
    assert "gone: the endpoint answered 410" in detail.text


async def test_an_owner_creates_a_webhook_and_sees_its_secret_once(harness: Harness) -> None:
    browser = await sign_in(harness.client)
    form = await harness.client.get(f"{PAGES}/new")
    assert form.status_code == 200
    for label in ("Name", "URL", "Enabled", "Use Basic Auth", "Username", "Password"):
        assert f">{label}</label>" in form.text
    for trigger in TRIGGERS:
        assert f'<label for="trigger-{trigger}" class="mono">{trigger}</label>' in form.text
    assert "<legend>Events</legend>" in form.text
    created = await browser.post(PAGES, _form())
    assert created.status_code == 201, created.text
    [stored] = await harness.store.webhooks.list_for_app(DEV_APP)
    assert stored.url == "https://hooks.example.com/orders"
    assert stored.triggers == ("after_delivery_failed", "after_batch_completed")
    assert stored.enabled
    secret = stored.signing_secret
    assert secret.startswith("whsec_")
    assert f'value="{secret}"' in created.text
    # The address becomes the webhook's page (a reload reads it rather than posting again).
    assert f'data-replace-url="{PAGES}/{stored.webhook_id}"' in created.text
    assert "it is shown this once" in created.text
    # The outbox published it for the emitter, as the API's create does.
    assert harness.webhook_configs.latest(stored.key) is not None
    # Never again: the detail, the list and the edit form do not carry it.
    for path in ("", f"/{stored.webhook_id}", f"/{stored.webhook_id}/edit"):
        again = await harness.client.get(f"{PAGES}{path}")
        assert again.status_code == 200
        assert secret not in again.text
        assert "Signing secret" not in again.text
    [entry] = _audit(harness, "webhook.create")
    assert (entry.app_id, entry.actor, entry.target) == (
        DEV_APP,
        "admin@clarion.local",
        stored.webhook_id,
    )
    assert entry.detail["webhookURL"] == "https://hooks.example.com/orders"
    assert secret not in json.dumps(entry.detail)
    # The public API sees the same webhook.
    api = await harness.client.get(f"/v3/webhooks/{stored.webhook_id}", headers=AUTH)
    assert api.json()["data"]["name"] == "Orders"


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"webhookURL": "http://hooks.example.com/in"}, "URL must be an https URL."),
        (
            {"webhookURL": "https://127.0.0.1/in"},
            "URL must not name a loopback, private, link-local or reserved address.",
        ),
        ({"webhookURL": "https://user:pw@hooks.example.com/"}, "(use Basic Auth)"),
        ({"webhookURL": "not a url"}, "URL must not contain spaces or control characters."),
        ({"webhookURL": ""}, "URL is required."),
        ({"triggers": None}, "Choose at least one event."),
        ({"name": ""}, "Name is required."),
        ({"useBasicAuth": "true", "username": ""}, "Username is required"),
    ],
)
async def test_a_bad_webhook_is_refused_in_words(
    harness: Harness, fields: dict[str, Any], said: str
) -> None:
    browser = await sign_in(harness.client)
    refused = await browser.post(PAGES, _form(**{"password": "do-not-echo", **fields}))
    assert refused.status_code == 400
    assert said in refused.text
    assert "ERR_" not in refused.text
    assert "do-not-echo" not in refused.text
    assert 'value="Orders"' in refused.text or not fields.get("name", "x")
    assert await harness.store.webhooks.list_for_app(DEV_APP) == []
    assert _audit(harness, "webhook.create") == []


async def test_an_owner_edits_a_webhook(harness: Harness) -> None:
    webhook_id = await _api_webhook(
        harness, useBasicAuth=True, username="hook", password="kept-secret"
    )
    browser = await sign_in(harness.client)
    form = await harness.client.get(f"{PAGES}/{webhook_id}/edit")
    assert 'value="https://hooks.example.com/in"' in form.text
    assert 'aria-describedby="trigger-after_batch_completed-hint" checked>' in form.text
    assert 'aria-describedby="trigger-after_feed_item_read-hint" checked>' not in form.text
    assert "kept-secret" not in form.text
    assert "Leave empty to keep the current one." in form.text
    saved = await browser.post(
        f"{PAGES}/{webhook_id}/edit",
        _form(name="Renamed", useBasicAuth="true", username="hook", password=""),
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"{PAGES}/{webhook_id}?done=saved"
    stored = await _stored(harness, webhook_id)
    assert stored is not None
    assert (stored.name, stored.url) == ("Renamed", "https://hooks.example.com/orders")
    assert stored.password == "kept-secret"  # an empty password keeps the stored one
    published = harness.webhook_configs.latest(stored.key)  # the outbox told the emitter
    assert published is not None
    assert published.name == "Renamed"
    [entry] = _audit(harness, "webhook.update")
    assert entry.target == webhook_id
    assert entry.detail["changed"] == ["name", "webhookURL", "triggers"]
    page = await harness.client.get(saved.headers["location"])
    assert "Webhook saved." in page.text
    bad = await browser.post(f"{PAGES}/{webhook_id}/edit", _form(webhookURL="https://10.0.0.1/"))
    assert bad.status_code == 400
    assert "must not name a loopback, private" in bad.text
    assert len(_audit(harness, "webhook.update")) == 1


async def test_an_owner_enables_a_webhook_disabled_by_failures(harness: Harness) -> None:
    webhook_id = await _api_webhook(harness)
    await _auto_disable(harness, webhook_id)
    browser = await sign_in(harness.client)
    page = await harness.client.get(f"{PAGES}/{webhook_id}")
    assert ">Enable</button>" in page.text
    enabled = await browser.post(f"{PAGES}/{webhook_id}/state", {"enabled": "true"})
    assert enabled.headers["location"] == f"{PAGES}/{webhook_id}?done=enabled"
    stored = await _stored(harness, webhook_id)
    assert stored is not None
    assert stored.enabled
    assert stored.disabled_reason is None
    disabled = await browser.post(f"{PAGES}/{webhook_id}/state", {"enabled": "false"})
    assert disabled.headers["location"].endswith("done=disabled")
    stored = await _stored(harness, webhook_id)
    assert stored is not None
    assert not stored.enabled
    assert [e.detail["enabled"] for e in _audit(harness, "webhook.update")] == [True, False]


async def test_rotating_shows_the_new_secret_once(harness: Harness) -> None:
    webhook_id = await _api_webhook(harness)
    old = await _stored(harness, webhook_id)
    assert old is not None
    browser = await sign_in(harness.client)
    confirm = await harness.client.get(f"{PAGES}/{webhook_id}/rotate")
    assert ">Rotate secret</button>" in confirm.text
    assert await _stored(harness, webhook_id) == old  # asking is not doing
    rotated = await browser.post(f"{PAGES}/{webhook_id}/rotate", {})
    assert rotated.status_code == 200
    new = await _stored(harness, webhook_id)
    assert new is not None
    assert new.signing_secret != old.signing_secret
    assert new.previous_signing_secret == old.signing_secret
    assert f'value="{new.signing_secret}"' in rotated.text
    assert old.signing_secret not in rotated.text
    later = await harness.client.get(f"{PAGES}/{webhook_id}")
    assert new.signing_secret not in later.text
    [entry] = _audit(harness, "webhook.update")
    assert entry.detail == {"changed": [], "rotated": True}


async def test_deleting_asks_first_then_deletes(harness: Harness) -> None:
    webhook_id = await _api_webhook(harness)
    browser = await sign_in(harness.client)
    confirm = await harness.client.get(f"{PAGES}/{webhook_id}/delete")
    assert confirm.status_code == 200
    assert "Delete webhook “Orders”?" in confirm.text
    assert "Nothing more is sent to https://hooks.example.com/in" in confirm.text
    assert ">Delete webhook</button>" in confirm.text
    assert await _stored(harness, webhook_id) is not None
    deleted = await browser.post(f"{PAGES}/{webhook_id}/delete", {})
    assert deleted.status_code == 303
    assert deleted.headers["location"] == f"{PAGES}?done=deleted"
    assert await harness.store.webhooks.list_for_app(DEV_APP) == []
    assert harness.webhook_configs.latest(f"{DEV_APP}:{webhook_id}") is None  # the tombstone
    [entry] = _audit(harness, "webhook.delete")
    assert (entry.target, entry.detail["name"]) == (webhook_id, "Orders")
    listed = await harness.client.get(deleted.headers["location"])
    assert "Webhook deleted" in listed.text
    gone = await harness.client.get(f"{PAGES}/{webhook_id}")
    assert gone.status_code == 404


async def test_the_detail_lists_deliveries_through_the_emitter(harness: Harness) -> None:
    harness.peer = _emitter
    webhook_id = await _api_webhook(harness)
    await sign_in(harness.client)
    page = await harness.client.get(f"{PAGES}/{webhook_id}?status=failed&page=2&perPage=10")
    assert page.status_code == 200
    [asked] = harness.peer_requests
    assert asked.url.path == f"/internal/apps/{DEV_APP}/webhooks/{webhook_id}/deliveries"
    assert parse_qs(asked.url.query.decode()) == {
        "page": ["2"],
        "perPage": ["10"],
        "status": ["failed"],
    }
    assert "apikey" not in asked.headers
    html = page.text
    assert '<span class="badge failed">failed</span>' in html
    assert '<span class="badge pending">pending</span>' in html
    assert "2 attempts</summary>" in html
    assert '<span class="attempt-no">Attempt 2</span>' in html
    assert "HTTP 500" in html
    assert "timeout" in html  # the last attempt's error
    assert "2023-11-14 22:23 UTC" in html  # the pending one's next retry
    # "Retry" on the failed delivery only.
    assert html.count(">Retry</button>") == 1
    assert f"{PAGES}/{webhook_id}/deliveries/msg_failed/retry" in html
    assert "45 deliveries · page 2 of 5" in html
    assert f'href="{PAGES}/{webhook_id}?status=failed&amp;page=3&amp;perPage=10"' in html
    assert '<option value="failed" selected>Failed</option>' in html
    for label in ("Status", "Per page"):
        assert f">{label}</label>" in html


async def test_an_owner_retries_a_failed_delivery(harness: Harness) -> None:
    harness.peer = _emitter
    webhook_id = await _api_webhook(harness)
    browser = await sign_in(harness.client)
    base = f"{PAGES}/{webhook_id}/deliveries"
    view = {"status": "failed", "page": "2", "perPage": "10"}
    retried = await browser.post(f"{base}/msg_failed/retry", view)
    assert retried.status_code == 303
    assert retried.headers["location"] == (
        f"{PAGES}/{webhook_id}?status=failed&page=2&perPage=10&done=retried&delivery=msg_failed"
    )
    [asked] = harness.peer_requests
    owner = f"/internal/apps/{DEV_APP}/webhooks/{webhook_id}"
    assert (asked.method, asked.url.path) == ("POST", f"{owner}/deliveries/msg_failed/retry")
    [entry] = _audit(harness, "webhook.retry")
    assert (entry.target, entry.detail["deliveryId"]) == (webhook_id, "msg_failed")
    shown = await harness.client.get(retried.headers["location"])
    assert "Delivery msg_failed will be sent again now." in shown.text
    pending = await browser.post(f"{base}/msg_pending/retry", view)
    assert pending.status_code == 409
    assert "This delivery is pending: it will be attempted on its schedule." in pending.text
    unknown = await browser.post(f"{base}/msg_404/retry", {})
    assert unknown.status_code == 404
    assert "This webhook has no delivery msg_404." in unknown.text
    harness.peer = _down
    down = await browser.post(f"{base}/msg_failed/retry", {})
    assert down.status_code == 503
    assert "The webhook emitter did not answer." in down.text
    assert len(_audit(harness, "webhook.retry")) == 1


async def test_an_owner_replays_failed_deliveries_of_a_range_of_days(harness: Harness) -> None:
    harness.peer = _emitter
    webhook_id = await _api_webhook(harness)
    browser = await sign_in(harness.client)
    replayed = await browser.post(
        f"{PAGES}/{webhook_id}/replay", {"since": "2024-01-01", "until": "2024-01-02"}
    )
    assert replayed.status_code == 303
    assert replayed.headers["location"] == f"{PAGES}/{webhook_id}?done=replayed&count=3"
    [asked] = harness.peer_requests
    assert asked.url.path.endswith(f"/webhooks/{webhook_id}/replay")
    assert json.loads(asked.content) == {"since": 1704067200, "until": 1704239999}
    [entry] = _audit(harness, "webhook.replay")
    assert entry.detail == {"since": 1704067200, "until": 1704239999, "count": 3}
    shown = await harness.client.get(replayed.headers["location"])
    assert "3 failed deliveries will be sent again now." in shown.text
    bad = await browser.post(f"{PAGES}/{webhook_id}/replay", {"since": "soon"})
    assert bad.status_code == 400
    assert "Since must be a date (YYYY-MM-DD)." in bad.text
    assert [r.method for r in harness.peer_requests].count("POST") == 1  # no second replay


@pytest.mark.parametrize("role", ["editor", "viewer"])
async def test_editors_and_viewers_read_but_cannot_change(harness: Harness, role: str) -> None:
    harness.peer = _emitter
    webhook_id = await _api_webhook(harness)
    before = await _stored(harness, webhook_id)
    async with _as(harness, role) as browser:
        listed = await browser.client.get(PAGES)
        assert listed.status_code == 200
        assert "Orders" in listed.text
        assert "New webhook" not in listed.text
        detail = await browser.client.get(f"{PAGES}/{webhook_id}")
        assert detail.status_code == 200
        assert "HTTP 500" in detail.text  # the deliveries are readable
        for control in (">Retry</button>", ">Edit</a>", ">Delete</a>", ">Replay</button>"):
            assert control not in detail.text
        for path in (
            "/new",
            f"/{webhook_id}/edit",
            f"/{webhook_id}/delete",
            f"/{webhook_id}/rotate",
        ):
            refused = await browser.client.get(f"{PAGES}{path}")
            assert refused.status_code == 403, path
        for path, form in (
            ("", _form()),
            (f"/{webhook_id}/edit", _form(name="Mine")),
            (f"/{webhook_id}/state", {"enabled": "false"}),
            (f"/{webhook_id}/rotate", {}),
            (f"/{webhook_id}/delete", {}),
            (f"/{webhook_id}/deliveries/msg_failed/retry", {}),
            (f"/{webhook_id}/replay", {"since": "2024-01-01"}),
        ):
            refused = await browser.post(f"{PAGES}{path}", form)
            assert refused.status_code == 403, path
            assert "Your role in" in refused.text
            assert f"is {role}: only owners of the app change webhooks" in refused.text
    assert await _stored(harness, webhook_id) == before
    assert len(await harness.store.webhooks.list_for_app(DEV_APP)) == 1
    assert [r.method for r in harness.peer_requests] == ["GET"]  # the listing only
    assert not [e for e in harness.store.audit.entries if e.action.startswith("webhook.")]


async def test_changes_need_the_csrf_token_and_the_origin(harness: Harness) -> None:
    webhook_id = await _api_webhook(harness)
    browser = await sign_in(harness.client)
    no_token = await harness.client.post(
        f"{PAGES}/{webhook_id}/delete", data={}, headers={"origin": browser.origin}
    )
    assert no_token.status_code == 403
    assert "security token is missing or out of date" in no_token.text
    elsewhere = await browser.post(PAGES, _form(), origin="https://evil.example")
    assert elsewhere.status_code == 403
    assert "did not come from a Clarion dashboard page" in elsewhere.text
    assert await _stored(harness, webhook_id) is not None
    assert len(await harness.store.webhooks.list_for_app(DEV_APP)) == 1
    assert not [e for e in harness.store.audit.entries if e.action.startswith("webhook.")]


async def test_an_unknown_or_another_app_s_webhook_is_404_in_words(harness: Harness) -> None:
    harness.peer = _emitter
    created = await harness.client.post("/admin/apps", json={"name": "Other"}, headers=ADMIN)
    other_app = created.json()["data"]["appId"]
    theirs = await _api_webhook(harness, {"apikey": created.json()["data"]["apiKey"]})
    browser = await sign_in(harness.client)  # the first operator owns both apps
    for target in (theirs, "wh_unknown"):
        base = f"{PAGES}/{target}"
        for path in ("", "/edit", "/delete", "/rotate"):
            page = await harness.client.get(f"{base}{path}")
            assert page.status_code == 404, path
            assert "No such webhook" in page.text
            assert f"This app has no webhook {target}" in page.text
        for path, form in (
            ("/edit", _form()),
            ("/state", {"enabled": "false"}),
            ("/rotate", {}),
            ("/delete", {}),
            ("/deliveries/msg_failed/retry", {}),
            ("/replay", {"since": "2024-01-01"}),
        ):
            refused = await browser.post(f"{base}{path}", form)
            assert refused.status_code == 404, path
    assert harness.peer_requests == []  # the emitter is never asked
    assert await _stored(harness, theirs, other_app) is not None
    # An operator with no role in an app does not see its pages at all.
    async with _as(harness, "owner") as owner:
        page = await owner.client.get(f"/dashboard/apps/{other_app}/webhooks/{theirs}")
        assert page.status_code == 404
        assert "There is no such page" in page.text


async def test_the_detail_says_when_the_emitter_is_down(harness: Harness) -> None:
    harness.peer = _down
    webhook_id = await _api_webhook(harness)
    await sign_in(harness.client)
    page = await harness.client.get(f"{PAGES}/{webhook_id}")
    assert page.status_code == 200
    assert "The webhook emitter did not answer. Try again in a moment." in page.text
    assert "https://hooks.example.com/in" in page.text


async def test_the_form_says_http_is_allowed_when_private_addresses_are() -> None:
    from clarion_gateway.testing import gateway_harness, make_settings

    async with gateway_harness(make_settings(webhooks_allow_private=True)) as harness:
        browser = await sign_in(harness.client)
        form = await harness.client.get(f"{PAGES}/new")
        assert "this deployment allows private addresses" in form.text
        made = await browser.post(PAGES, _form(webhookURL="http://127.0.0.1:9000/hook"))
        assert made.status_code == 201, made.text


def test_every_trigger_has_a_hint() -> None:
    assert tuple(TRIGGER_HINTS) == TRIGGERS


def test_replay_days_are_utc_days_both_included() -> None:
    assert replay_range("2024-01-01", "") == (1704067200, None)
    assert replay_range("2024-01-02", "2024-01-01") == ["Until is before Since."]
    assert replay_range("", "x") == [
        "Since must be a date (YYYY-MM-DD).",
        "Until must be a date (YYYY-MM-DD).",
    ]


def test_refusals_name_the_form_s_fields() -> None:
    with pytest.raises(Invalid) as raised:
        check_url("ftp://example.com", allow_private=False)
    assert in_words(raised.value) == ["URL must be an absolute http(s) URL."]
    assert in_words(Invalid("Something else.")) == ["Something else."]
