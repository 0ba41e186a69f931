"""The Campaigns list and "New campaign" pages on the gateway harness: the list as
``GET /v3/campaigns/campaigns`` reads it, a draft created as the API creates it, its
audience from a CSV (a dry run first, its result swapped in over server-sent events,
its rejected rows downloadable, then the confirmed import) or picked with the Users
filters, then "Send now" or "Schedule"; errors said in words, viewers refused, the
campaign actions audited."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from typing import Any
from urllib.parse import parse_qs

import httpx

from clarion_devtools.helpers import wait_until
from clarion_gateway.campaigns.dry_runs import DryRun
from clarion_gateway.testing import ADMIN, AUTH, DEV_APP, ORIGIN, Browser, Harness, sign_in

CAMPAIGNS = f"/dashboard/apps/{DEV_APP}/campaigns"
API = "/v3/campaigns/campaigns"
SAMPLE = (
    b"user_id,city\n"  # 1
    b"u1,Rome\n"  # 2: accepted
    b"ghost,Oslo\n"  # 3: ERR_USER_NOT_FOUND
    b"u1,Paris\n"  # 4: duplicate of row 2
    b"bad uid,x\n"  # 5: ERR_VALIDATION
    b"u2,Lima\n"  # 6: accepted
)


def _user(uid: str) -> dict[str, Any]:
    return {
        "uid": uid,
        "name": f"Name {uid}",
        "avatar": None,
        "link": None,
        "role": "vip" if uid.endswith("1") else "default",
        "metadata": {},
        "tags": [],
        "status": "offline",
        "lastActiveAt": None,
        "createdAt": 1_700_000_000,
        "updatedAt": 1_700_000_000,
    }


def _directory(request: httpx.Request) -> httpx.Response:
    """The directory's users list (the picker reads it as the Users page does)."""
    if request.url.path == f"/internal/apps/{DEV_APP}/users":
        query = parse_qs(request.url.query.decode())
        page, per_page = int(query["page"][0]), int(query["perPage"][0])
        users = [_user("u1"), _user("u2"), _user("u3")]
        pagination = {
            "total": 3,
            "count": 3,
            "per_page": per_page,
            "current_page": page,
            "total_pages": 1,
        }
        return httpx.Response(200, json={"data": users, "meta": {"pagination": pagination}})
    if request.url.path == f"/internal/apps/{DEV_APP}/roles":
        return httpx.Response(200, json={"data": {"roles": ["vip"], "truncated": False}})
    return httpx.Response(404, json={"error": {"code": "ERR_NOT_FOUND"}})


async def _setup(harness: Harness) -> Browser:
    harness.peer = _directory
    harness.directory.add_users(DEV_APP, "u1", "u2", "u3", role="default")
    await harness.create_channel()
    await harness.create_template(templateId="promo", name="Promo")
    return await sign_in(harness.client)


async def _draft(browser: Browser, name: str = "Sale") -> str:
    created = await browser.post(
        f"{CAMPAIGNS}/new", {"name": name, "templateId": "promo", "templateVersion": "1"}
    )
    assert created.status_code == 303, created.text
    found = re.fullmatch(rf"{CAMPAIGNS}/(cmp_\w+)/audience", created.headers["location"])
    assert found, created.headers["location"]
    return found.group(1)


async def _upload(
    browser: Browser, campaign_id: str, content: bytes, **headers: str
) -> httpx.Response:
    return await browser.client.post(
        f"{CAMPAIGNS}/{campaign_id}/audience/csv",
        data={"csrf_token": browser.csrf},
        files={"file": ("audience.csv", content, "text/csv")},
        headers={"origin": ORIGIN, **headers},
    )


def _htmx(browser: Browser, target: str) -> dict[str, str]:
    """What htmx sends: its headers and the CSRF token's (``clarion.js``)."""
    return {"hx-request": "true", "hx-target": target, "x-csrf-token": browser.csrf}


async def _api_campaign(harness: Harness, campaign_id: str) -> dict[str, Any]:
    response = await harness.client.get(f"{API}/{campaign_id}", headers=AUTH)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _events(body: str) -> list[tuple[str, str]]:
    """The server-sent events of a stream: (event, data)."""
    out = []
    for block in body.split("\n\n"):
        lines = block.splitlines()
        kind = next((line[7:] for line in lines if line.startswith("event: ")), None)
        if kind is not None:
            data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
            out.append((kind, data))
    return out


# ---------------------------------------------------------------- the list


async def test_the_list_shows_campaigns_filters_and_pages(harness: Harness) -> None:
    browser = await _setup(harness)
    empty = await harness.client.get(CAMPAIGNS)
    assert empty.status_code == 200
    assert "This app has no campaigns yet." in empty.text
    assert ">New campaign</button>" in empty.text
    first = await _draft(browser, "Spring")
    await _draft(browser, "Summer")
    harness.directory.add_users(DEV_APP, "u9")
    added = await harness.client.post(
        f"{API}/{first}/recipients", json={"userIds": ["u9"]}, headers=AUTH
    )
    assert added.status_code == 201
    sent = await harness.client.post(f"{API}/{first}/send", headers=AUTH)
    assert sent.status_code == 200, sent.text

    page = await harness.client.get(CAMPAIGNS)
    html = page.text
    assert f'<a href="{CAMPAIGNS}/{first}">Spring</a>' in html
    assert '<span class="badge sending">sending</span>' in html
    assert '<span class="badge draft">draft</span>' in html
    assert "Promo <span" in html  # the template's name
    assert "Sent 20" in html  # its send time
    assert "2 campaigns · page 1 of 1" in html
    for label in ("Search", "Status", "Per page"):
        assert f">{label}</label>" in html

    drafts = await harness.client.get(f"{CAMPAIGNS}?status=draft")
    assert "Summer" in drafts.text
    assert "Spring" not in drafts.text
    assert '<option value="draft" selected>Draft</option>' in drafts.text
    paged = await harness.client.get(f"{CAMPAIGNS}?perPage=1&page=2")
    assert "2 campaigns · page 2 of 2" in paged.text
    assert "status" not in parse_qs(re.findall(r'rel="prev" href="[^?]+\?([^"]+)"', paged.text)[0])
    none = await harness.client.get(f"{CAMPAIGNS}?search=nothing-like-it")
    assert "No campaign matches these filters." in none.text
    lenient = await harness.client.get(f"{CAMPAIGNS}?status=bogus&page=x&perPage=900")
    assert lenient.status_code == 200
    assert "page 1 of 1" in lenient.text


# ---------------------------------------------------------------- new campaign


async def test_new_campaign_creates_a_draft_as_the_api_does_and_audits_it(
    harness: Harness,
) -> None:
    browser = await _setup(harness)
    await harness.create_template(approve=False, templateId="wip", name="Work in progress")
    form = await harness.client.get(f"{CAMPAIGNS}/new")
    assert form.status_code == 200
    assert ">Name</label>" in form.text
    assert ">Template</label>" in form.text
    assert ">Version</label>" in form.text
    assert '<option value="promo">Promo (promo)</option>' in form.text
    assert "Work in progress" not in form.text  # not approved: not offered
    chosen = await harness.client.get(f"{CAMPAIGNS}/new?templateId=promo&name=Sale")
    assert '<option value="1">Version 1 (newest approved)</option>' in chosen.text
    assert 'value="Sale"' in chosen.text

    campaign_id = await _draft(browser)
    data = await _api_campaign(harness, campaign_id)
    assert (data["name"], data["status"], data["templateId"], data["templateVersion"]) == (
        "Sale",
        "draft",
        "promo",
        1,
    )
    [entry] = [e for e in harness.store.audit.entries if e.action == "campaign.create"]
    assert (entry.app_id, entry.actor, entry.target) == (
        DEV_APP,
        "admin@clarion.local",
        campaign_id,
    )
    assert entry.detail == {"name": "Sale", "templateId": "promo", "templateVersion": 1}
    page = await harness.client.get(f"{CAMPAIGNS}/{campaign_id}/audience")
    assert page.status_code == 200
    assert '<strong id="audience-count">0</strong>' in page.text
    assert ">CSV file</label>" in page.text
    assert ">Pick users</button>" in page.text
    assert ">Send now</button>" in page.text
    assert ">Send at</label>" in page.text
    assert f'href="{CAMPAIGNS}/{campaign_id}">Campaign detail</a>' in page.text


async def test_new_campaign_errors_are_said_in_words(harness: Harness) -> None:
    browser = await _setup(harness)
    no_template = await browser.post(f"{CAMPAIGNS}/new", {"name": "Sale", "templateId": ""})
    assert no_template.status_code == 400
    assert "Choose a template." in no_template.text
    no_name = await browser.post(f"{CAMPAIGNS}/new", {"name": " ", "templateId": "promo"})
    assert "Name the campaign." in no_name.text
    bad_version = await browser.post(
        f"{CAMPAIGNS}/new", {"name": "Sale", "templateId": "promo", "templateVersion": "7"}
    )
    assert "Choose an approved version of Promo." in bad_version.text
    # "Choose" without JavaScript shows the template's versions, creating nothing.
    chosen = await browser.post(
        f"{CAMPAIGNS}/new", {"name": "Sale", "templateId": "promo", "action": "choose"}
    )
    assert chosen.status_code == 200
    assert "Version 1 (newest approved)" in chosen.text
    assert harness.store.campaigns.docs == {}
    assert not [e for e in harness.store.audit.entries if e.action == "campaign.create"]


async def test_without_an_approved_template_the_form_says_what_to_do(harness: Harness) -> None:
    await sign_in(harness.client)
    page = await harness.client.get(f"{CAMPAIGNS}/new")
    assert "This app has no approved template yet." in page.text
    assert "Create campaign" not in page.text


# ---------------------------------------------------------------- CSV audience


async def test_a_csv_is_dry_run_then_imported_without_javascript(harness: Harness) -> None:
    browser = await _setup(harness)
    campaign_id = await _draft(browser)
    uploaded = await _upload(browser, campaign_id, SAMPLE)
    assert uploaded.status_code == 303, uploaded.text
    location = uploaded.headers["location"]
    dry_run_id = parse_qs(location.split("?", 1)[1])["dryRun"][0]
    page = await harness.client.get(location)
    html = page.text
    assert "What importing this file would do" in html
    assert "<dt>Rows</dt><dd>5</dd>" in html
    assert "<dt>Would be added</dt><dd>2</dd>" in html
    assert "<dt>Duplicates</dt><dd>1</dd>" in html
    assert "<dt>Rejected</dt><dd>2</dd>" in html
    assert "No such user." in html
    assert '<td class="mono">ghost</td>' in html
    assert "Row 4: <span" in html  # the duplicate row and the row it repeats
    assert '<span class="mono">city</span>' in html
    assert (await _api_campaign(harness, campaign_id))["totalTargets"] == 0  # nothing yet

    rows_url = f"{CAMPAIGNS}/{campaign_id}/audience/dry-runs/{dry_run_id}/rejected.csv"
    assert f'href="{rows_url}"' in html
    download = await harness.client.get(rows_url)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0] == ["row", "user_id", "code", "message"]
    assert [(r[0], r[2]) for r in rows[1:]] == [
        ("3", "ERR_USER_NOT_FOUND"),
        ("5", "ERR_VALIDATION"),
    ]

    confirmed = await browser.post(
        f"{CAMPAIGNS}/{campaign_id}/audience/import", {"dryRunId": dry_run_id}
    )
    assert confirmed.status_code == 303, confirmed.text
    outcome = await harness.client.get(confirmed.headers["location"])
    assert "Imported 2 recipients from 5 rows: 1 duplicate, 2 rejected." in outcome.text
    assert '<strong id="audience-count">2</strong>' in outcome.text
    listed = await harness.client.get(f"{API}/{campaign_id}/recipients", headers=AUTH)
    assert {r["userId"]: r["variables"] for r in listed.json()["data"]} == {
        "u1": {"city": "Rome"},
        "u2": {"city": "Lima"},
    }
    [audited] = [e for e in harness.store.audit.entries if e.action == "campaign.audience"]
    assert (audited.target, audited.detail["via"]) == (campaign_id, "csv")


async def test_with_htmx_the_results_arrive_over_server_sent_events(harness: Harness) -> None:
    browser = await _setup(harness)
    campaign_id = await _draft(browser)
    base = f"{CAMPAIGNS}/{campaign_id}/audience"
    gate = asyncio.Event()
    lookup = harness.directory.existing

    async def held(app_id: str, uids: Any) -> set[str]:
        await gate.wait()  # the run stays in "checking users" until the test lets it go
        return await lookup(app_id, uids)

    harness.directory.existing = held  # type: ignore[method-assign]
    uploaded = await _upload(browser, campaign_id, SAMPLE, **_htmx(browser, "csv-panel"))
    assert uploaded.status_code == 200, uploaded.text
    assert "<html" not in uploaded.text  # the panel alone
    assert '<section id="csv-panel"' in uploaded.text
    pushed = uploaded.headers["hx-push-url"]
    dry_run_id = parse_qs(pushed.split("?", 1)[1])["dryRun"][0]
    events_url = f"{base}/dry-runs/{dry_run_id}/events"
    assert f'sse-connect="{events_url}" sse-close="done"' in uploaded.text
    assert "Checking the file" in uploaded.text

    stream = asyncio.create_task(harness.client.get(events_url))
    await asyncio.sleep(0)
    gate.set()
    answer = await stream
    assert answer.headers["content-type"].startswith("text/event-stream")
    [(kind, fragment)] = _events(answer.text)
    assert kind == "done"
    assert "<dt>Would be added</dt><dd>2</dd>" in fragment
    assert "Confirm import</button>" in fragment
    assert "<h3" not in fragment  # the body only: it fills the live part

    confirmed = await browser.client.post(
        f"{base}/import",
        data={"dryRunId": dry_run_id},
        headers={"origin": ORIGIN, **_htmx(browser, "csv-panel")},
    )
    assert confirmed.status_code == 200, confirmed.text
    import_id = parse_qs(confirmed.headers["hx-push-url"].split("?", 1)[1])["import"][0]
    done = await harness.client.get(f"{base}/imports/{import_id}/events")
    [(kind, fragment)] = _events(done.text)
    assert kind == "done"
    assert "Imported 2 recipients" in fragment
    # The page's audience count, swapped out of band.
    assert '<strong id="audience-count" hx-swap-oob="true">2</strong>' in fragment
    assert 'id="send-card" class="card" aria-labelledby="send-title" hx-swap-oob="true"' in fragment
    assert "To its 2 recipients, at once." in fragment


async def test_a_run_on_another_gateway_is_said_to_be_running(harness: Harness) -> None:
    browser = await _setup(harness)
    campaign_id = await _draft(browser)
    # A dry run this process does not carry out (another instance's): still running.
    elsewhere = DryRun(DEV_APP, campaign_id, "dry_elsewhere", "upl_x", 10, 1, 2**40, 2**41)
    await harness.csv_imports.dry_runs.insert(elsewhere)
    base = f"{CAMPAIGNS}/{campaign_id}/audience"
    answer = await harness.client.get(f"{base}/dry-runs/dry_elsewhere/events")
    [(kind, fragment)] = _events(answer.text)
    assert kind == "done"
    assert "still being checked by another Clarion gateway" in fragment
    missing = await harness.client.get(f"{base}/dry-runs/dry_none/events")
    assert missing.status_code == 404
    assert "That dry run is gone" in missing.text
    gone = await harness.client.get(f"{base}?dryRun=dry_none")
    assert "That dry run is gone" in gone.text


async def test_csv_problems_are_said_in_words(harness: Harness) -> None:
    browser = await _setup(harness)
    campaign_id = await _draft(browser)
    no_file = await browser.client.post(
        f"{CAMPAIGNS}/{campaign_id}/audience/csv",
        data={"csrf_token": browser.csrf},
        files={"file": ("", b"", "application/octet-stream")},
        headers={"origin": ORIGIN},
    )
    assert no_file.status_code == 400
    assert "Choose a CSV file to upload." in no_file.text
    empty = await _upload(browser, campaign_id, b"")
    assert empty.status_code == 400
    assert "The CSV is empty: it needs a header with user_id." in empty.text
    no_column = await _upload(browser, campaign_id, b"uid,name\nu1,A\n")
    assert no_column.status_code == 400
    assert "The CSV has no user_id column." in no_column.text
    assert "ERR_CSV_INVALID" not in no_column.text
    too_many = b"user_id\n" + b"".join(f"x{n}\n".encode() for n in range(10_001))
    failed = await _upload(browser, campaign_id, too_many)
    assert failed.status_code == 303
    page = await harness.client.get(failed.headers["location"])
    assert "This file cannot be imported: The audience is over 10000 recipients." in page.text
    assert "Confirm import" not in page.text
    dry_run_id = parse_qs(failed.headers["location"].split("?", 1)[1])["dryRun"][0]
    refused = await browser.post(
        f"{CAMPAIGNS}/{campaign_id}/audience/import", {"dryRunId": dry_run_id}
    )
    assert refused.status_code == 400
    assert "Only a dry run that completed can be imported." in refused.text
    no_rows = await harness.client.get(
        f"{CAMPAIGNS}/{campaign_id}/audience/dry-runs/{dry_run_id}/rejected.csv"
    )
    assert no_rows.status_code == 409
    assert "failed: it has no rejected rows to download" in no_rows.text
    assert harness.csv_imports.imports.docs == {}


# ---------------------------------------------------------------- pick users


async def test_pick_users_adds_the_checked_users_as_the_api_does(harness: Harness) -> None:
    browser = await _setup(harness)
    campaign_id = await _draft(browser)
    base = f"{CAMPAIGNS}/{campaign_id}/audience"
    picker = await harness.client.get(f"{base}/pick?role=vip&perPage=50")
    html = picker.text
    for label in ("Search", "Role", "Status", "Created after", "Created before", "Per page"):
        assert f">{label}</label>" in html
    assert 'aria-label="Select u2"' in html
    assert '<option value="vip" selected>vip</option>' in html
    [asked] = [r for r in harness.peer_requests if r.url.path.endswith("/users")]
    assert parse_qs(asked.url.query.decode()) == {"page": ["1"], "perPage": ["50"], "role": ["vip"]}

    nothing = await browser.post(f"{base}/users", {})
    assert nothing.status_code == 400
    assert "Select at least one user to add." in nothing.text
    added = await browser.client.post(
        f"{base}/users",
        data={"csrf_token": browser.csrf, "userIds": ["u1", "u2", "ghost"], "role": "vip"},
        headers={"origin": ORIGIN, **_htmx(browser, "pick-panel")},
    )
    assert added.status_code == 200, added.text
    assert "<html" not in added.text
    assert "Added 2 recipients. The audience now has 2." in added.text
    assert '<span class="mono">ghost</span>: No such user.' in added.text
    assert '<strong id="audience-count" hx-swap-oob="true">2</strong>' in added.text
    assert "To its 2 recipients, at once." in added.text  # the send card, out of band
    # Users in the audience are shown as added, without a checkbox.
    assert 'aria-label="Select u1"' not in added.text
    assert 'aria-label="Select u3"' in added.text
    assert added.text.count('<span class="badge completed">added</span>') == 2
    assert '<option value="vip" selected>vip</option>' in added.text  # the same filter
    again = await browser.post(f"{base}/users", {"userIds": ["u1"]})
    assert "Added 0 recipients (1 already in the audience)." in again.text

    every = await browser.post(f"{base}/matching", {"role": "default"})
    assert every.status_code == 200, every.text
    assert "Added 1 recipient (2 already in the audience). The audience now has 3." in every.text
    assert (await _api_campaign(harness, campaign_id))["totalTargets"] == 3
    bad = await browser.post(f"{base}/matching", {"createdAfter": "soon"})
    assert bad.status_code == 400
    assert "Created after must be a date (YYYY-MM-DD)." in bad.text
    audited = [e.detail for e in harness.store.audit.entries if e.action == "campaign.audience"]
    assert audited == [
        {"via": "pick", "added": 2},
        {"via": "pick", "added": 0},
        {"via": "filter", "added": 1},
    ]


# ---------------------------------------------------------------- send or schedule


async def test_send_now_sends_the_campaign_and_goes_to_its_detail_page(harness: Harness) -> None:
    browser = await _setup(harness)
    campaign_id = await _draft(browser)
    empty = await browser.post(f"{CAMPAIGNS}/{campaign_id}/send", {})
    assert empty.status_code == 400
    assert "The campaign has no recipients." in empty.text
    await browser.post(f"{CAMPAIGNS}/{campaign_id}/audience/users", {"userIds": ["u1", "u2"]})
    sent = await browser.post(f"{CAMPAIGNS}/{campaign_id}/send", {})
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == f"{CAMPAIGNS}/{campaign_id}"
    assert (await _api_campaign(harness, campaign_id))["status"] == "sending"
    [command] = harness.commands.sends
    assert command.mode == "campaign"
    assert command.send_id == campaign_id
    assert sorted(command.receivers) == ["u1", "u2"]
    [entry] = [e for e in harness.store.audit.entries if e.action == "campaign.send"]
    assert (entry.target, entry.detail) == (campaign_id, {"recipients": 2})
    again = await browser.post(f"{CAMPAIGNS}/{campaign_id}/send", {})
    assert again.status_code == 400  # shown on the page: the campaign is sending
    assert "The campaign is sending" in again.text
    page = await harness.client.get(f"{CAMPAIGNS}/{campaign_id}/audience")
    assert "its audience can no longer change" in page.text
    assert "CSV file" not in page.text


async def test_schedule_takes_a_utc_time_in_the_future(harness: Harness) -> None:
    browser = await _setup(harness)
    campaign_id = await _draft(browser)
    await browser.post(f"{CAMPAIGNS}/{campaign_id}/audience/users", {"userIds": ["u1"]})
    schedule = f"{CAMPAIGNS}/{campaign_id}/schedule"
    past = await browser.post(schedule, {"sendAt": "2001-01-01T10:00"})
    assert past.status_code == 400
    assert "Send at must be in the future" in past.text
    assert 'value="2001-01-01T10:00"' in past.text  # as typed
    garbled = await browser.post(schedule, {"sendAt": "tomorrow"})
    assert "Send at must be a date and time (YYYY-MM-DDTHH:MM, UTC)." in garbled.text
    missing = await browser.post(schedule, {})
    assert "Choose when to send (Send at, UTC)." in missing.text
    scheduled = await browser.post(schedule, {"sendAt": "2099-06-01T09:30"})
    assert scheduled.status_code == 303, scheduled.text
    assert scheduled.headers["location"] == f"{CAMPAIGNS}/{campaign_id}"
    data = await _api_campaign(harness, campaign_id)
    assert (data["status"], data["scheduledAt"]) == ("scheduled", 4083989400)
    [entry] = [e for e in harness.store.audit.entries if e.action == "campaign.schedule"]
    assert (entry.target, entry.detail) == (campaign_id, {"scheduledAt": 4083989400})
    assert harness.commands.sends == []


# ---------------------------------------------------------------- who may


async def test_a_viewer_reads_campaigns_but_changes_nothing(harness: Harness) -> None:
    owner = await _setup(harness)
    campaign_id = await _draft(owner)
    body = {
        "email": "vi@example.com",
        "password": "a long passphrase",
        "roles": {DEV_APP: "viewer"},
    }
    created = await harness.client.post("/admin/operators", json=body, headers=ADMIN)
    assert created.status_code == 201
    viewer = await sign_in(harness.client, "vi@example.com", "a long passphrase")
    listed = await harness.client.get(CAMPAIGNS)
    assert listed.status_code == 200
    assert "Sale" in listed.text
    assert "New campaign</button>" not in listed.text
    page = await harness.client.get(f"{CAMPAIGNS}/{campaign_id}/audience")
    assert page.status_code == 200
    assert "Viewers can read campaigns but not change them." in page.text
    for control in ("CSV file", "Pick users</button>", "Send now", "Schedule</button>"):
        assert control not in page.text
    assert (await harness.client.get(f"{CAMPAIGNS}/new")).status_code == 403
    assert (await harness.client.get(f"{CAMPAIGNS}/{campaign_id}/audience/pick")).status_code == 403
    writes: list[tuple[str, dict[str, Any]]] = [
        (f"{CAMPAIGNS}/new", {"name": "X", "templateId": "promo"}),
        (f"{CAMPAIGNS}/{campaign_id}/audience/users", {"userIds": ["u1"]}),
        (f"{CAMPAIGNS}/{campaign_id}/audience/matching", {}),
        (f"{CAMPAIGNS}/{campaign_id}/audience/import", {"dryRunId": "dry_x"}),
        (f"{CAMPAIGNS}/{campaign_id}/send", {}),
        (f"{CAMPAIGNS}/{campaign_id}/schedule", {"sendAt": "2099-01-01T00:00"}),
    ]
    for path, data in writes:
        refused = await viewer.post(path, data)
        assert refused.status_code == 403, path
        assert "viewers can read campaigns but not create, change or send them" in refused.text
    upload = await _upload(viewer, campaign_id, SAMPLE)
    assert upload.status_code == 403
    assert (await _api_campaign(harness, campaign_id))["totalTargets"] == 0
    assert len(harness.store.campaigns.docs) == 1
    assert harness.csv_imports.dry_runs.docs == {}
    actions = {e.action for e in harness.store.audit.entries if e.actor == "vi@example.com"}
    assert actions <= {"operator.sign_in"}


async def test_forms_without_the_csrf_token_or_from_elsewhere_are_refused(
    harness: Harness,
) -> None:
    browser = await _setup(harness)
    campaign_id = await _draft(browser)
    for path in (f"{CAMPAIGNS}/new", f"{CAMPAIGNS}/{campaign_id}/send"):
        forged = await harness.client.post(path, data={"name": "X"}, headers={"origin": ORIGIN})
        assert forged.status_code == 403
        assert "security token is missing or out of date" in forged.text
        elsewhere = await harness.client.post(
            path,
            data={"csrf_token": browser.csrf, "name": "X"},
            headers={"origin": "https://evil.example"},
        )
        assert elsewhere.status_code == 403
        assert "did not come from a Clarion dashboard page" in elsewhere.text
    assert (await _api_campaign(harness, campaign_id))["status"] == "draft"
    assert len(harness.store.campaigns.docs) == 1


async def test_another_apps_campaign_is_not_found(harness: Harness) -> None:
    browser = await _setup(harness)
    other = await harness.client.post("/admin/apps", json={"name": "Other"}, headers=ADMIN)
    other_key = {"apikey": other.json()["data"]["apiKey"]}
    channel = {"name": "In-app", "type": "in_app", "enabled": True}
    assert (
        await harness.client.post("/v3/campaigns/channels", json=channel, headers=other_key)
    ).status_code == 201
    template = {
        "name": "T",
        "templateId": "t",
        "channels": [{"channelType": "in_app", "content": {"title": "a", "body": "b"}}],
    }
    await harness.client.post("/v3/campaigns/templates", json=template, headers=other_key)
    await harness.client.put(
        "/v3/campaigns/templates/t", json={"status": "approved"}, headers=other_key
    )
    theirs = await harness.client.post(
        API, json={"name": "Theirs", "templateId": "t", "templateVersion": 1}, headers=other_key
    )
    their_id = theirs.json()["data"]["id"]
    page = await harness.client.get(f"{CAMPAIGNS}/{their_id}/audience")
    assert page.status_code == 404
    assert f"This app has no campaign {their_id}." in page.text
    send = await browser.post(f"{CAMPAIGNS}/{their_id}/send", {})
    assert send.status_code == 404

    async def unchanged() -> bool | None:
        got = await harness.client.get(f"{API}/{their_id}", headers=other_key)
        return True if got.json()["data"]["status"] == "draft" else None

    assert await wait_until(unchanged, timeout_s=5, interval_s=0.01, what="their campaign")
