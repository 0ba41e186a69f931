"""The Templates and Template detail pages: the list read as
``GET /v3/campaigns/templates`` reads it, a template's versions, variables and content,
the live preview, and an editor's "Approve" (audited)."""

from __future__ import annotations

import re
from typing import Any

from clarion_gateway.testing import ADMIN, AUTH, DEV_APP, Harness, sign_in

TEMPLATES = f"/dashboard/apps/{DEV_APP}/templates"
HTMX = {"hx-request": "true"}


def _rows(html: str) -> int:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return body.count("<tr>")


async def _operator(harness: Harness, email: str, role: str) -> None:
    body = {"email": email, "password": "a long passphrase", "roles": {DEV_APP: role}}
    created = await harness.client.post("/admin/operators", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text


async def _rich_template(harness: Harness, **body: Any) -> dict[str, Any]:
    """A draft with every kind of variable, and an in-app and an email channel."""
    body.setdefault("name", "Welcome")
    body.setdefault("templateCategory", "Onboarding")
    body.setdefault(
        "channels",
        [
            {"channelType": "in_app", "content": {"title": "Hi {{name}}", "body": "{{plan}}"}},
            {
                "channelType": "email",
                "channelId": "mail-main",
                "content": {"subject": "Hi {{name}}", "html": "<p>Hello {{name}}</p>"},
            },
        ],
    )
    body.setdefault(
        "variableSchema",
        [
            {"key": "name", "type": "string", "required": True, "name": "First name"},
            {"key": "plan", "type": "string", "defaultValue": "Free plan"},
        ],
    )
    return await harness.create_template(approve=False, **body)


async def test_the_list_shows_each_template_with_its_status_version_and_channels(
    harness: Harness,
) -> None:
    await harness.create_template(name="Order update")
    await _rich_template(harness)
    await sign_in(harness.client)
    page = await harness.client.get(TEMPLATES)
    assert page.status_code == 200
    html = page.text
    assert _rows(html) == 2
    assert f'<a href="{TEMPLATES}/order_update">Order update</a>' in html
    assert f'<a href="{TEMPLATES}/welcome">Welcome</a>' in html
    assert '<span class="badge approved">approved</span>' in html
    assert '<span class="badge draft">draft</span>' in html
    assert "<td>Onboarding</td>" in html
    assert "<td>in_app, email</td>" in html
    assert "<td>v1</td>" in html
    assert "2 templates · page 1 of 1" in html
    for label in ("Search", "Status", "Per page"):
        assert f">{label}</label>" in html
    assert "templates.css" in html


async def test_the_list_searches_by_name_and_filters_by_status(harness: Harness) -> None:
    await harness.create_template(name="Order update")
    await harness.create_template(name="Order shipped", approve=False)
    await harness.create_template(name="Password reset")
    await sign_in(harness.client)
    found = await harness.client.get(f"{TEMPLATES}?search=ORDER")
    assert _rows(found.text) == 2
    assert "Password reset" not in found.text
    assert 'value="ORDER"' in found.text
    drafts = await harness.client.get(f"{TEMPLATES}?search=order&status=draft")
    assert _rows(drafts.text) == 1
    assert "Order shipped" in drafts.text
    assert '<option value="draft" selected>Draft</option>' in drafts.text
    none = await harness.client.get(f"{TEMPLATES}?search=nothing-like-it")
    assert "No template matches these filters." in none.text
    # A status the page does not know is dropped, not an error.
    lenient = await harness.client.get(f"{TEMPLATES}?status=bogus&perPage=x&page=-3")
    assert lenient.status_code == 200
    assert _rows(lenient.text) == 3


async def test_the_list_pages_newest_first(harness: Harness) -> None:
    for n in range(25):
        await harness.create_template(name=f"T{n:02d}", approve=False)
    await sign_in(harness.client)
    first = await harness.client.get(TEMPLATES)
    assert _rows(first.text) == 20
    assert "25 templates · page 1 of 2" in first.text
    assert f'href="{TEMPLATES}?page=2&amp;perPage=20"' in first.text
    second = await harness.client.get(f"{TEMPLATES}?page=2")
    assert _rows(second.text) == 5
    assert "page 2 of 2" in second.text
    assert f'href="{TEMPLATES}?page=1&amp;perPage=20"' in second.text
    small = await harness.client.get(f"{TEMPLATES}?perPage=10&page=3")
    assert _rows(small.text) == 5
    assert "page 3 of 3" in small.text
    beyond = await harness.client.get(f"{TEMPLATES}?page=9")
    assert "There is no template on this page." in beyond.text


async def test_an_app_without_templates_says_how_to_create_one(harness: Harness) -> None:
    await sign_in(harness.client)
    page = await harness.client.get(TEMPLATES)
    assert page.status_code == 200
    assert "This app has no templates yet." in page.text
    assert "POST /v3/campaigns/templates" in page.text
    assert "0 templates · page 1 of 1" in page.text


async def test_the_detail_shows_versions_variables_and_content(harness: Harness) -> None:
    template = await _rich_template(harness)
    await sign_in(harness.client)
    page = await harness.client.get(f"{TEMPLATES}/{template['templateId']}")
    assert page.status_code == 200
    html = page.text
    assert "<h1>Welcome" in html
    assert '<td class="mono">name</td>' in html
    assert "<td>First name</td>" in html
    assert '<span class="mono">Free plan</span>' in html
    assert "<td>yes</td>" in html
    assert "<td>no</td>" in html
    # The content as stored, tokens and markup shown as text.
    assert "<pre>Hi {{name}}</pre>" in html
    assert "<pre>&lt;p&gt;Hello {{name}}&lt;/p&gt;</pre>" in html
    assert 'email <span class="mono">mail-main</span>; the others use' in html
    assert '<label for="var-name">name</label>' in html
    assert '<label for="var-plan">name</label>' not in html
    assert '<label for="var-plan">plan</label>' in html
    assert 'placeholder="Free plan"' in html
    assert 'hx-get="' + f"{TEMPLATES}/welcome/preview" + '"' in html
    assert 'hx-trigger="input delay:300ms, submit"' in html
    assert ">Preview</button>" in html
    assert "Fill in name to see the content." in html
    assert ">Version</label>" in html
    assert "nothing yet: no version is approved" in html


async def test_the_version_selector_shows_an_older_version(harness: Harness) -> None:
    template = await harness.create_template(name="Order update")
    tid = template["templateId"]
    edited = await harness.client.put(
        f"/v3/campaigns/templates/{tid}/channels/in_app",
        json={"content": {"title": "Hello {{name}}", "body": "Order v2"}},
        headers=AUTH,
    )
    assert edited.status_code == 200
    await sign_in(harness.client)
    newest = await harness.client.get(f"{TEMPLATES}/{tid}")
    assert "<pre>Order v2</pre>" in newest.text
    assert '<option value="2" selected>Version 2 (draft)</option>' in newest.text
    assert '<option value="1">Version 1 (approved)</option>' in newest.text
    assert "version 1</dd>" in newest.text  # sends use version 1
    older = await harness.client.get(f"{TEMPLATES}/{tid}?version=1")
    assert "<pre>Order</pre>" in older.text
    assert "<pre>Order v2</pre>" not in older.text
    assert '<option value="1" selected>Version 1 (approved)</option>' in older.text
    assert f'<a href="{TEMPLATES}/{tid}?version=1" aria-current="true">' in older.text
    missing = await harness.client.get(f"{TEMPLATES}/{tid}?version=7")
    assert missing.status_code == 404
    assert f"Template {tid} has no version 7. Its versions are 1 to 2." in missing.text


async def test_the_preview_renders_the_values_and_escapes_html(harness: Harness) -> None:
    template = await _rich_template(harness)
    preview_url = f"{TEMPLATES}/{template['templateId']}/preview"
    await sign_in(harness.client)
    answer = await harness.client.get(
        preview_url, params={"version": "1", "var.name": "<b>Ann</b>"}, headers=HTMX
    )
    assert answer.status_code == 200
    html = answer.text
    assert "<html" not in html  # the partial alone
    assert 'id="template-preview"' in html
    assert "<pre>Hi &lt;b&gt;Ann&lt;/b&gt;</pre>" in html
    assert "<b>Ann</b>" not in html
    assert "<pre>Free plan</pre>" in html  # the default of an optional variable
    # Email HTML gets escaped values (as sends do), then the page shows it as text.
    assert "<pre>&lt;p&gt;Hello &amp;lt;b&amp;gt;Ann&amp;lt;/b&amp;gt;&lt;/p&gt;</pre>" in html
    chosen = await harness.client.get(
        preview_url, params={"var.name": "Ann", "var.plan": "Pro"}, headers=HTMX
    )
    assert "<pre>Hi Ann</pre>" in chosen.text
    assert "<pre>Pro</pre>" in chosen.text


async def test_a_missing_required_variable_is_said_in_words(harness: Harness) -> None:
    template = await _rich_template(harness)
    await sign_in(harness.client)
    answer = await harness.client.get(
        f"{TEMPLATES}/{template['templateId']}/preview",
        params={"var.name": " ", "var.plan": "Pro"},
        headers=HTMX,
    )
    assert "Fill in name to see the content." in answer.text
    assert "<pre>" not in answer.text


async def test_a_json_variable_that_is_not_an_object_is_said_in_words(harness: Harness) -> None:
    template = await harness.create_template(
        name="Pictured",
        channels=[{"channelType": "in_app", "content": {"title": "{{pic}}", "body": "b"}}],
        variableSchema=[{"key": "pic", "type": "image"}],
    )
    await sign_in(harness.client)
    page = await harness.client.get(f"{TEMPLATES}/{template['templateId']}")
    assert '<textarea id="var-pic" name="var.pic"' in page.text
    bad = await harness.client.get(
        f"{TEMPLATES}/{template['templateId']}/preview", params={"var.pic": "[1]"}, headers=HTMX
    )
    assert "pic must be a JSON object (it is of type image)." in bad.text
    good = await harness.client.get(
        f"{TEMPLATES}/{template['templateId']}/preview",
        params={"var.pic": '{"url": "https://x.test/a.png"}'},
        headers=HTMX,
    )
    assert "https://x.test/a.png" in good.text


async def test_without_javascript_the_preview_button_renders_the_page(harness: Harness) -> None:
    template = await _rich_template(harness)
    detail = f"{TEMPLATES}/{template['templateId']}"
    await sign_in(harness.client)
    # The form's own GET: the whole page, the values kept in their inputs.
    page = await harness.client.get(detail, params={"version": "1", "var.name": "Ann"})
    assert "<pre>Hi Ann</pre>" in page.text
    assert 'value="Ann"' in page.text
    assert '<form id="preview-form" method="get" action="' + detail + '"' in page.text
    # The preview route asked for by a browser (not htmx) sends it to that page.
    moved = await harness.client.get(f"{detail}/preview", params={"var.name": "Ann"})
    assert moved.status_code == 303
    assert moved.headers["location"] == f"{detail}?var.name=Ann"


async def test_an_editor_approves_the_newest_draft_and_it_is_audited(harness: Harness) -> None:
    template = await _rich_template(harness)
    tid = template["templateId"]
    await _operator(harness, "ed@example.com", "editor")
    browser = await sign_in(harness.client, "ed@example.com", "a long passphrase")
    page = await harness.client.get(f"{TEMPLATES}/{tid}")
    assert ">Approve</button>" in page.text
    assert f'action="{TEMPLATES}/{tid}/approve"' in page.text
    approved = await browser.post(f"{TEMPLATES}/{tid}/approve", {"version": "1"})
    assert approved.status_code == 303
    assert approved.headers["location"] == f"{TEMPLATES}/{tid}?version=1&approved=1"
    stored = await harness.store.templates.get(DEV_APP, tid)
    assert stored is not None
    assert stored.status == "approved"
    assert stored.approved_version == 1
    [entry] = [e for e in harness.store.audit.entries if e.action == "template.approve"]
    assert (entry.app_id, entry.actor, entry.target) == (DEV_APP, "ed@example.com", tid)
    assert entry.detail["version"] == 1
    after = await harness.client.get(approved.headers["location"])
    assert "Version 1 is approved: sends of this template use it now." in after.text
    assert ">Approve</button>" not in after.text
    # The public API sees the same approval: the page used its use case.
    api = await harness.client.get(f"/v3/campaigns/templates/{tid}", headers=AUTH)
    assert api.json()["data"]["status"] == "approved"


async def test_approving_a_version_that_is_not_the_newest_draft_is_refused(
    harness: Harness,
) -> None:
    template = await harness.create_template(name="Order update")
    tid = template["templateId"]
    await harness.client.post(f"/v3/campaigns/templates/{tid}/versions", headers=AUTH)
    browser = await sign_in(harness.client)
    stale = await browser.post(f"{TEMPLATES}/{tid}/approve", {"version": "1"})
    assert stale.status_code == 409
    assert "Version 1 cannot be approved: only the newest version" in stale.text
    stored = await harness.store.templates.get(DEV_APP, tid)
    assert stored is not None
    assert [v.status for v in stored.versions] == ["approved", "draft"]
    assert not [e for e in harness.store.audit.entries if e.action == "template.approve"]
    ok = await browser.post(f"{TEMPLATES}/{tid}/approve", {"version": "2"})
    assert ok.status_code == 303


async def test_a_viewer_sees_no_approve_button_and_cannot_approve(harness: Harness) -> None:
    template = await _rich_template(harness)
    tid = template["templateId"]
    await _operator(harness, "vi@example.com", "viewer")
    browser = await sign_in(harness.client, "vi@example.com", "a long passphrase")
    page = await harness.client.get(f"{TEMPLATES}/{tid}")
    assert page.status_code == 200
    assert ">Approve</button>" not in page.text
    assert f'action="{TEMPLATES}/{tid}/approve"' not in page.text
    assert "Viewers cannot approve" in page.text
    assert (await harness.client.get(TEMPLATES)).status_code == 200
    refused = await browser.post(f"{TEMPLATES}/{tid}/approve", {"version": "1"})
    assert refused.status_code == 403
    assert "viewers can read templates but not approve them" in refused.text
    stored = await harness.store.templates.get(DEV_APP, tid)
    assert stored is not None
    assert stored.status == "draft"
    assert not [e for e in harness.store.audit.entries if e.action == "template.approve"]


async def test_the_approve_form_needs_its_csrf_token_and_origin(harness: Harness) -> None:
    template = await _rich_template(harness)
    tid = template["templateId"]
    browser = await sign_in(harness.client)
    url = f"{TEMPLATES}/{tid}/approve"
    no_token = await harness.client.post(
        url, data={"version": "1"}, headers={"origin": browser.origin}
    )
    assert no_token.status_code == 403
    assert "security token is missing or out of date" in no_token.text
    wrong_token = await browser.post(url, {"version": "1", "csrf_token": "forged"})
    assert wrong_token.status_code == 403
    elsewhere = await harness.client.post(
        url,
        data={"version": "1", "csrf_token": browser.csrf},
        headers={"origin": "https://evil.example"},
    )
    assert elsewhere.status_code == 403
    assert "did not come from a Clarion dashboard page" in elsewhere.text
    no_origin = await harness.client.post(url, data={"version": "1", "csrf_token": browser.csrf})
    assert no_origin.status_code == 403
    stored = await harness.store.templates.get(DEV_APP, tid)
    assert stored is not None
    assert stored.status == "draft"


async def test_unknown_and_other_apps_templates_are_the_same_404(harness: Harness) -> None:
    other = await harness.client.post("/admin/apps", json={"name": "Other"}, headers=ADMIN)
    assert other.status_code == 201, other.text
    other_auth = {"apikey": other.json()["data"]["apiKey"]}
    theirs = await harness.client.post(
        "/v3/campaigns/templates",
        json={
            "name": "Secret",
            "templateId": "secret",
            "channels": [{"channelType": "in_app", "content": {"title": "t", "body": "b"}}],
        },
        headers=other_auth,
    )
    assert theirs.status_code == 201, theirs.text
    browser = await sign_in(harness.client)
    for tid in ("secret", "nope"):
        for path in ("", "/preview"):
            page = await harness.client.get(f"{TEMPLATES}/{tid}{path}", headers=HTMX)
            assert page.status_code == 404
            assert f"This app has no template {tid}." in page.text
        approve = await browser.post(f"{TEMPLATES}/{tid}/approve", {"version": "1"})
        assert approve.status_code == 404
    assert "Secret" not in (await harness.client.get(TEMPLATES)).text
    stranger = await harness.client.get("/dashboard/apps/no-such-app/templates")
    assert stranger.status_code == 404


async def test_the_pages_need_a_signed_in_operator(harness: Harness) -> None:
    answer = await harness.client.get(f"{TEMPLATES}/anything?version=1")
    assert answer.status_code == 303
    assert re.match(r"/dashboard/login\?next=", answer.headers["location"])
