"""The Users and User detail pages: the directory read as ``GET /v3/users`` reads it,
and the test send through the direct send's use case, its statuses and audit entry."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import httpx

from clarion_gateway.testing import ADMIN, DEV_APP, Harness, sign_in

USERS = f"/dashboard/apps/{DEV_APP}/users"


def _user(uid: str, role: str = "default", status: str = "offline") -> dict[str, Any]:
    return {
        "uid": uid,
        "name": f"Name {uid}",
        "avatar": None,
        "link": None,
        "role": role,
        "metadata": {"@private": {"email": f"{uid}@example.com"}},
        "tags": [],
        "status": status,
        "lastActiveAt": None,
        "createdAt": 1_700_000_000,
        "updatedAt": 1_700_000_000,
    }


def _page(users: list[dict[str, Any]], total: int, page: int, per_page: int) -> dict[str, Any]:
    pagination = {
        "total": total,
        "count": len(users),
        "per_page": per_page,
        "current_page": page,
        "total_pages": -(-total // per_page),
    }
    return {"data": users, "meta": {"pagination": pagination}}


def _directory(request: httpx.Request) -> httpx.Response:
    """The directory's users API and the dispatcher's notification states."""
    path = request.url.path
    if path == f"/internal/apps/{DEV_APP}/users":
        query = parse_qs(request.url.query.decode())
        page, per_page = int(query["page"][0]), int(query["perPage"][0])
        role = query.get("role", ["default"])[0]
        users = [_user("ann", role, "online"), _user("bob", role)]
        return httpx.Response(200, json=_page(users, 45, page, per_page))
    if path == f"/internal/apps/{DEV_APP}/roles":
        return httpx.Response(200, json={"data": {"roles": ["staff", "vip"], "truncated": False}})
    if path.startswith(f"/internal/apps/{DEV_APP}/users/"):
        uid = path.rsplit("/", 1)[1]
        if uid == "ghost":
            return httpx.Response(404, json={"error": {"code": "ERR_USER_NOT_FOUND"}})
        return httpx.Response(200, json={"data": _user(uid)})
    if path.startswith(f"/internal/apps/{DEV_APP}/notifications/"):
        channel = {"channelType": "in_app", "channelId": "in-app", "status": "sent"}
        notification = {
            "notificationId": path.rsplit("/", 1)[1],
            "mode": "realtime",
            "templateId": "order-update",
            "templateVersion": 1,
            "tag": None,
            "createdAt": 1_700_000_000,
            "receivers": [{"uid": "ann", "channels": [channel]}],
        }
        return httpx.Response(200, json={"data": notification})
    return httpx.Response(404, json={"error": {"code": "ERR_NOT_FOUND"}})


async def test_the_users_page_passes_filters_and_paging_to_the_directory(
    harness: Harness,
) -> None:
    harness.peer = _directory
    await sign_in(harness.client)
    query = (
        "search=an&role=vip&status=online&createdAfter=2024-01-01"
        "&createdBefore=2024-01-31&page=2&perPage=20"
    )
    page = await harness.client.get(f"{USERS}?{query}")
    assert page.status_code == 200
    [asked, *_] = [r for r in harness.peer_requests if r.url.path.endswith("/users")]
    assert parse_qs(asked.url.query.decode()) == {
        "page": ["2"],
        "perPage": ["20"],
        "searchKey": ["an"],
        "role": ["vip"],
        "status": ["online"],
        "createdAfter": ["1704067200"],  # 2024-01-01T00:00:00Z
        "createdBefore": ["1706745599"],  # 2024-01-31T23:59:59Z, the day included
    }
    html = page.text
    assert f'<a href="{USERS}/ann">ann</a>' in html
    assert "Name bob" in html
    assert '<option value="vip" selected>vip</option>' in html
    # The Role select offers every role the directory knows, not only the page's.
    assert '<option value="staff">staff</option>' in html
    assert '<option value="default">default</option>' in html
    assert '<option value="online" selected>Online</option>' in html
    assert "45 users · page 2 of 3" in html
    assert f'href="{USERS}?search=an&amp;role=vip&amp;status=online' in html
    assert "page=1" in html
    assert "page=3" in html
    for label in ("Search", "Role", "Status", "Created after", "Created before", "Per page"):
        assert f">{label}</label>" in html


async def test_the_users_page_defaults_and_bounds(harness: Harness) -> None:
    harness.peer = _directory
    await sign_in(harness.client)
    page = await harness.client.get(f"{USERS}?perPage=500&page=x&createdAfter=soon")
    asked = parse_qs(harness.peer_requests[0].url.query.decode())
    assert asked == {"page": ["1"], "perPage": ["100"]}
    assert "Created after must be a date (YYYY-MM-DD)." in page.text
    harness.peer_requests.clear()
    await harness.client.get(USERS)
    assert parse_qs(harness.peer_requests[0].url.query.decode())["perPage"] == ["20"]


async def test_a_directory_failure_is_said_in_words(harness: Harness) -> None:
    def refusing(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ghost"):
            return httpx.Response(404, json={"error": {"code": "ERR_USER_NOT_FOUND"}})
        error = {"code": "ERR_VALIDATION", "message": "bad", "devMessage": "perPage"}
        return httpx.Response(400, json={"error": error})

    harness.peer = refusing
    await sign_in(harness.client)
    page = await harness.client.get(USERS)
    assert page.status_code == 200
    assert "The user directory refused the filters: perPage" in page.text
    missing = await harness.client.get(f"{USERS}/ghost")
    assert missing.status_code == 404
    assert "This app has no user ghost." in missing.text
    harness.peer = lambda request: httpx.Response(502, text="down")
    unavailable = await harness.client.get(f"{USERS}/ann")
    assert unavailable.status_code == 503
    assert "The user directory answered with an error (502)" in unavailable.text


async def _send_setup(harness: Harness) -> dict[str, Any]:
    harness.peer = _directory
    await harness.create_channel()
    return await harness.create_template(
        variableSchema=[{"key": "name", "type": "string", "required": True}]
    )


async def test_the_user_detail_sends_and_shows_each_channels_status(harness: Harness) -> None:
    template = await _send_setup(harness)
    browser = await sign_in(harness.client)
    detail = await harness.client.get(f"{USERS}/ann")
    assert "Send notification</button>" in detail.text
    form = await harness.client.get(f"{USERS}/ann/send?templateId={template['templateId']}")
    assert '<label for="var-name">name</label>' in form.text
    assert ">Template</label>" in form.text
    assert ">Send</button>" in form.text
    preview = await harness.client.get(
        f"{USERS}/ann/send?templateId={template['templateId']}&var.name=Ann",
        headers={"hx-request": "true", "hx-target": "send-preview"},
    )
    assert "Hi Ann" in preview.text
    assert "<html" not in preview.text
    sent = await browser.post(
        f"{USERS}/ann/send",
        {
            "templateId": template["templateId"],
            "var.name": "Ann",
            "sendKey": "k1",
            "action": "send",
        },
    )
    assert sent.status_code == 200
    [command] = harness.commands.sends
    assert command.mode == "realtime"
    assert command.receivers == ["ann"]
    assert command.variables == {"ann": {"name": "Ann"}}
    assert command.template.template_id == template["templateId"]
    assert f'Notification <span class="mono">{command.send_id}</span>: sent' in sent.text
    assert '<span class="badge sent">sent</span>' in sent.text
    assert "in_app" in sent.text
    [entry] = [e for e in harness.store.audit.entries if e.action == "send"]
    assert (entry.app_id, entry.actor, entry.target) == (
        DEV_APP,
        "admin@clarion.local",
        command.send_id,
    )
    assert entry.detail["receiver"] == "ann"
    # The same form posted again is the same send (its key derives the id).
    await browser.post(
        f"{USERS}/ann/send",
        {"templateId": template["templateId"], "var.name": "Ann", "sendKey": "k1"},
    )
    assert harness.commands.sends[1].send_id == command.send_id


async def test_send_errors_are_shown_on_the_form_in_words(harness: Harness) -> None:
    await _send_setup(harness)
    draft = await harness.create_template(approve=False, name="Draft one")
    browser = await sign_in(harness.client)
    not_approved = await browser.post(
        f"{USERS}/ann/send", {"templateId": draft["templateId"], "var.name": "Ann"}
    )
    assert not_approved.status_code == 200
    assert "The template is not approved." in not_approved.text
    assert "ERR_" not in not_approved.text
    assert '"error"' not in not_approved.text
    nothing = await browser.post(f"{USERS}/ann/send", {"templateId": ""})
    assert "Choose a template." in nothing.text
    assert harness.commands.sends == []
    # Draft templates are not offered.
    form = await harness.client.get(f"{USERS}/ann/send")
    assert "Draft one" not in form.text
    assert "Order update" in form.text


async def test_a_viewer_reads_but_cannot_send(harness: Harness) -> None:
    template = await _send_setup(harness)
    body = {
        "email": "vi@example.com",
        "password": "a long passphrase",
        "roles": {DEV_APP: "viewer"},
    }
    assert (
        await harness.client.post("/admin/operators", json=body, headers=ADMIN)
    ).status_code == 201
    browser = await sign_in(harness.client, "vi@example.com", "a long passphrase")
    detail = await harness.client.get(f"{USERS}/ann")
    assert detail.status_code == 200
    assert "Send notification</button>" not in detail.text
    refused = await browser.post(
        f"{USERS}/ann/send", {"templateId": template["templateId"], "var.name": "Ann"}
    )
    assert refused.status_code == 403
    assert "viewers can read but not send" in refused.text
    assert (await harness.client.get(f"{USERS}/ann/send")).status_code == 403
    assert harness.commands.sends == []
    assert not [e for e in harness.store.audit.entries if e.action == "send"]
    audit = await harness.client.get(f"/dashboard/apps/{DEV_APP}/audit")
    assert audit.status_code == 404  # owners only


async def test_the_audit_page_lists_sends_for_owners(harness: Harness) -> None:
    template = await _send_setup(harness)
    browser = await sign_in(harness.client)
    await browser.post(f"{USERS}/ann/send", {"templateId": template["templateId"], "var.name": "A"})
    page = await harness.client.get(f"/dashboard/apps/{DEV_APP}/audit")
    assert page.status_code == 200
    assert '<td class="mono">send</td>' in page.text
    assert "admin@clarion.local" in page.text
    assert "apikey" not in page.text.lower()
