"""Dry runs of CSV imports over HTTP on the gateway harness (issue 10, item 4): what the
import would do (rows, duplicates and which rows, rejected rows with their reasons, the
variable columns), the rejected rows as CSV safe for spreadsheets, the audience left
alone, then the confirmed import agreeing; and the refusals in the error envelope."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx

from clarion_devtools.helpers import wait_until
from clarion_gateway.testing import ADMIN, AUTH, DEV_APP, Harness

CAMPAIGNS = "/v3/campaigns/campaigns"
# Rows (header = 1) and what each is: the audience holds "old" before.
SAMPLE = (
    b"user_id,note,city\n"  # 1
    b"u1,first,Rome\n"  # 2: accepted
    b"\n"  # 3: blank, numbered, not counted
    b"bad uid,x,\n"  # 4: ERR_VALIDATION
    b"ghost,boo,\n"  # 5: ERR_USER_NOT_FOUND
    b"old,again,\n"  # 6: duplicate (in the audience already)
    b"u2,a,b,c\n"  # 7: ERR_CSV_INVALID (too many fields)
    b"u1,second,\n"  # 8: duplicate of row 2
    b",empty,\n"  # 9: ERR_VALIDATION (empty user_id)
    b"u3,a\x00b,\n"  # 10: ERR_VALIDATION (NUL)
    b'u3,"quoted, note",Paris\n'  # 11: accepted
    b"-cmd,x,\n"  # 12: ERR_USER_NOT_FOUND, a uid a spreadsheet would take for a formula
)
SAMPLE_REJECTED = [
    (4, None, "ERR_VALIDATION"),
    (5, "ghost", "ERR_USER_NOT_FOUND"),
    (7, None, "ERR_CSV_INVALID"),
    (9, None, "ERR_VALIDATION"),
    (10, None, "ERR_VALIDATION"),
    (12, "-cmd", "ERR_USER_NOT_FOUND"),
]


async def _draft(harness: Harness, prior: tuple[str, ...] = ("old",)) -> str:
    await harness.create_channel()
    await harness.create_template(templateId="promo")
    body = {"name": "Sale", "templateId": "promo", "templateVersion": 1}
    response = await harness.client.post(CAMPAIGNS, json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    campaign_id: str = response.json()["data"]["id"]
    harness.directory.add_users(DEV_APP, "old", "u1", "u2", "u3")
    if prior:
        added = await harness.client.post(
            f"{CAMPAIGNS}/{campaign_id}/recipients", json={"userIds": list(prior)}, headers=AUTH
        )
        assert added.status_code == 201, added.text
    return campaign_id


async def _uploaded(harness: Harness, campaign_id: str, content: bytes) -> str:
    issued = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients/upload-url", headers=AUTH
    )
    assert issued.status_code == 201, issued.text
    put = await harness.client.put(issued.json()["data"]["uploadUrl"], content=content)
    assert put.status_code == 200, put.text
    key: str = issued.json()["data"]["s3Key"]
    return key


async def _dry_run(harness: Harness, campaign_id: str, key: str) -> dict[str, Any]:
    started = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/import-csv", json={"s3Key": key, "dryRun": True}, headers=AUTH
    )
    assert started.status_code == 202, started.text
    data: dict[str, Any] = started.json()["data"]
    assert data["s3Key"] == key
    assert data["status"] == "running"
    assert data["dryRunId"].startswith("dry_")
    return data


async def _dry_run_done(harness: Harness, campaign_id: str, dry_run_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await harness.client.get(
            f"{CAMPAIGNS}/{campaign_id}/dry-runs/{dry_run_id}", headers=AUTH
        )
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return None if data["status"] == "running" else data

    return await wait_until(probe, timeout_s=20, interval_s=0.01, what="the dry run's end")


async def _imported(harness: Harness, campaign_id: str, key: str) -> dict[str, Any]:
    started = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/import-csv", json={"s3Key": key}, headers=AUTH
    )
    assert started.status_code == 202, started.text

    async def probe() -> dict[str, Any] | None:
        response = await harness.client.get(
            f"{CAMPAIGNS}/{campaign_id}/import-status", headers=AUTH
        )
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return None if data["status"] == "processing" else data

    return await wait_until(probe, timeout_s=20, interval_s=0.01, what="the import's end")


async def _audience(harness: Harness, campaign_id: str) -> tuple[int, dict[str, Any]]:
    got = await harness.client.get(f"{CAMPAIGNS}/{campaign_id}", headers=AUTH)
    listed = await harness.client.get(
        f"{CAMPAIGNS}/{campaign_id}/recipients", params={"perPage": 100}, headers=AUTH
    )
    total: int = got.json()["data"]["totalTargets"]
    return total, {r["userId"]: r["variables"] for r in listed.json()["data"]}


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["message"]
    code: str = error["code"]
    return code


def _agree(dry: dict[str, Any], done: dict[str, Any]) -> None:
    """The dry run's numbers are the import's report."""
    assert done["status"] == dry["status"] == "completed", (dry, done)
    assert dry["rows"] == done["rows"]
    assert dry["accepted"] == done["imported"]
    assert dry["duplicates"] == done["duplicates"]
    assert dry["rejectedCount"] == done["rejectedCount"]
    assert dry["rejected"] == done["rejected"][:100]


# ---------------------------------------------------------------- what it says


async def test_a_dry_run_says_what_the_import_would_do_and_touches_nothing(
    harness: Harness,
) -> None:
    campaign_id = await _draft(harness)
    before = await _audience(harness, campaign_id)
    key = await _uploaded(harness, campaign_id, SAMPLE)
    started = await _dry_run(harness, campaign_id, key)
    dry = await _dry_run_done(harness, campaign_id, started["dryRunId"])

    assert dry["status"] == "completed"
    assert (dry["stage"], dry["totalBytes"], dry["processedBytes"]) == (
        "done",
        len(SAMPLE),
        len(SAMPLE),
    )
    assert dry["processedRows"] == dry["rows"] == 10
    assert (dry["accepted"], dry["duplicates"], dry["rejectedCount"]) == (2, 2, 6)
    assert dry["audienceBefore"] == 1
    assert dry["columns"] == ["note", "city"]
    assert dry["duplicateRows"] == [
        {"row": 6, "userId": "old"},
        {"row": 8, "userId": "u1", "firstRow": 2},
    ]
    assert [(r["row"], r.get("userId"), r["code"]) for r in dry["rejected"]] == SAMPLE_REJECTED
    assert dry["rejected"][0]["message"] == (
        "user_id \"bad uid\" is not valid: use 1-100 letters, digits, '_' or '-'."
    )
    assert dry["rejectedCsv"] == (
        f"{CAMPAIGNS}/{campaign_id}/dry-runs/{started['dryRunId']}/rejected.csv"
    )
    assert "error" not in dry
    assert dry["expiresAt"] - dry["createdAt"] == 24 * 3600

    # Nothing imported, nothing locked, no import recorded; the file is kept.
    assert await _audience(harness, campaign_id) == before
    assert harness.store.audience_locks.held == {}
    status = await harness.client.get(f"{CAMPAIGNS}/{campaign_id}/import-status", headers=AUTH)
    assert _error(status, 404) == "ERR_NOT_FOUND"
    assert key in harness.csv_imports.keys.docs
    assert harness.csv_imports.chunks.files() == {key}

    # Confirmed: the import of the same key reports the same, and imports the accepted.
    done = await _imported(harness, campaign_id, key)
    _agree(dry, done)
    total, recipients = await _audience(harness, campaign_id)
    assert total == 3
    assert recipients == {
        "old": {},
        "u1": {"note": "first", "city": "Rome"},
        "u3": {"note": "quoted, note", "city": "Paris"},
    }


async def test_the_rejected_rows_download_as_csv_a_spreadsheet_cannot_run(
    harness: Harness,
) -> None:
    campaign_id = await _draft(harness)
    # Over two documents' worth of rows: 2,400 unknown uids after the sample.
    extra = b"".join(b"-n%d,x,\n" % i for i in range(2_400))
    key = await _uploaded(harness, campaign_id, SAMPLE + extra)
    started = await _dry_run(harness, campaign_id, key)
    dry = await _dry_run_done(harness, campaign_id, started["dryRunId"])
    assert dry["rejectedCount"] == 6 + 2_400
    assert len(dry["rejected"]) == 100

    response = await harness.client.get(dry["rejectedCsv"], headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition == f'attachment; filename="{started["dryRunId"]}-rejected.csv"'
    assert response.text.startswith("row,user_id,code,message\r\n")
    records = list(csv.reader(io.StringIO(response.text)))
    assert records[0] == ["row", "user_id", "code", "message"]
    body = records[1:]
    assert len(body) == dry["rejectedCount"]
    assert [(int(r[0]), r[2]) for r in body[:6]] == [(row, c) for row, _, c in SAMPLE_REJECTED]
    # A formula-looking uid is data: an apostrophe before it; others as they are.
    assert body[1][1] == "ghost"
    assert body[5][1] == "'-cmd"
    assert body[6] == ["13", "'-n0", "ERR_USER_NOT_FOUND", "No such user."]
    assert body[-1][:2] == [str(12 + 2_400), "'-n2399"]
    # The reasons round-trip through the quoting (commas and quotes in a message).
    assert body[0][3] == dry["rejected"][0]["message"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in body for cell in row)


async def test_a_file_refused_whole_fails_the_dry_run_as_it_fails_the_import(
    harness: Harness,
) -> None:
    campaign_id = await _draft(harness)
    key = await _uploaded(harness, campaign_id, b"uid,name\nu1,Ann\n")
    started = await _dry_run(harness, campaign_id, key)
    dry = await _dry_run_done(harness, campaign_id, started["dryRunId"])
    assert dry["status"] == "failed"
    assert dry["error"] == {"code": "ERR_CSV_INVALID", "message": "The CSV has no user_id column."}
    assert (dry["rows"], dry["accepted"], dry["rejected"]) == (0, 0, [])
    csv_answer = await harness.client.get(dry["rejectedCsv"], headers=AUTH)
    assert _error(csv_answer, 409) == "ERR_CONFLICT"
    done = await _imported(harness, campaign_id, key)
    assert done["status"] == "failed"
    assert done["error"] == dry["error"]


async def test_a_multipart_dry_run_keeps_its_file_for_the_import_that_confirms_it(
    harness: Harness,
) -> None:
    campaign_id = await _draft(harness, prior=())
    content = b"user_id,name\r\nu1,Ann\r\nu2,Bob\r\nu1,Again\r\nnobody,X\r\n"
    started = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients/csv",
        params={"dryRun": "true"},
        files={"file": ("audience.csv", content, "text/csv")},
        headers=AUTH,
    )
    assert started.status_code == 202, started.text
    data = started.json()["data"]
    assert set(data) == {"dryRunId", "s3Key", "status"}
    dry = await _dry_run_done(harness, campaign_id, data["dryRunId"])
    assert (dry["rows"], dry["accepted"], dry["duplicates"], dry["rejectedCount"]) == (4, 2, 1, 1)
    assert await _audience(harness, campaign_id) == (0, {})
    done = await _imported(harness, campaign_id, data["s3Key"])
    _agree(dry, done)
    assert await _audience(harness, campaign_id) == (
        2,
        {"u1": {"name": "Ann"}, "u2": {"name": "Bob"}},
    )
    assert harness.csv_imports.keys.docs == {}  # the import took the file


async def test_a_multipart_dry_run_refuses_a_bad_header_at_once(harness: Harness) -> None:
    campaign_id = await _draft(harness)
    refused = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients/csv?dryRun=true",
        files={"file": ("audience.csv", b"name,name\nAnn,Bob\n", "text/csv")},
        headers=AUTH,
    )
    assert _error(refused, 400) == "ERR_CSV_INVALID"
    assert harness.csv_imports.keys.docs == {}
    assert harness.csv_imports.chunks.docs == {}
    assert harness.csv_imports.dry_runs.docs == {}


async def test_the_same_idempotency_key_answers_the_same_dry_run(harness: Harness) -> None:
    campaign_id = await _draft(harness)
    key = await _uploaded(harness, campaign_id, SAMPLE)
    url = f"{CAMPAIGNS}/{campaign_id}/import-csv"
    headers = {**AUTH, "Idempotency-Key": "dry-1"}
    first = await harness.client.post(url, json={"s3Key": key, "dryRun": True}, headers=headers)
    again = await harness.client.post(url, json={"s3Key": key, "dryRun": True}, headers=headers)
    assert first.status_code == again.status_code == 202, again.text
    assert first.json() == again.json()
    assert len(harness.csv_imports.dry_runs.docs) == 1
    other = await harness.client.post(url, json={"s3Key": key}, headers=headers)
    assert _error(other, 409) == "ERR_CONFLICT"


# ---------------------------------------------------------------- refusals


async def test_another_apps_campaign_and_dry_run_are_not_found(harness: Harness) -> None:
    campaign_id = await _draft(harness)
    key = await _uploaded(harness, campaign_id, SAMPLE)
    started = await _dry_run(harness, campaign_id, key)
    await _dry_run_done(harness, campaign_id, started["dryRunId"])
    created = await harness.client.post("/admin/apps", json={"name": "Other"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    other = {"apikey": created.json()["data"]["apiKey"]}
    run = f"{CAMPAIGNS}/{campaign_id}/dry-runs/{started['dryRunId']}"
    for path in (run, f"{run}/rejected.csv"):
        assert _error(await harness.client.get(path, headers=other), 404) == "ERR_NOT_FOUND"
    stolen = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/import-csv", json={"s3Key": key, "dryRun": True}, headers=other
    )
    assert _error(stolen, 404) == "ERR_NOT_FOUND"
    for path in (f"{CAMPAIGNS}/{campaign_id}/dry-runs/dry_nope", f"{run[:-4]}nope/rejected.csv"):
        assert _error(await harness.client.get(path, headers=AUTH), 404) == "ERR_NOT_FOUND"
    # Another campaign of the same app does not see it either.
    second = await harness.client.post(
        CAMPAIGNS, json={"name": "B", "templateId": "promo", "templateVersion": 1}, headers=AUTH
    )
    elsewhere = f"{CAMPAIGNS}/{second.json()['data']['id']}/dry-runs/{started['dryRunId']}"
    assert _error(await harness.client.get(elsewhere, headers=AUTH), 404) == "ERR_NOT_FOUND"


async def test_bad_input_is_400_in_the_envelope(harness: Harness) -> None:
    campaign_id = await _draft(harness)
    url = f"{CAMPAIGNS}/{campaign_id}/import-csv"
    for body in (
        {"s3Key": "", "dryRun": True},
        {"s3Key": "k", "dryRun": "maybe"},
        {"dryRun": True},
    ):
        response = await harness.client.post(url, json=body, headers=AUTH)
        assert _error(response, 400) == "ERR_VALIDATION", body
    upload = f"{CAMPAIGNS}/{campaign_id}/recipients/csv"
    maybe = await harness.client.post(
        f"{upload}?dryRun=maybe", files={"file": ("a.csv", b"user_id\nu1\n")}, headers=AUTH
    )
    assert _error(maybe, 400) == "ERR_VALIDATION"
    no_file = await harness.client.post(
        f"{upload}?dryRun=true", files={"other": ("a.csv", b"user_id\nu1\n")}, headers=AUTH
    )
    assert _error(no_file, 400) == "ERR_VALIDATION"
    unknown = await harness.client.post(
        url, json={"s3Key": "upl_nope", "dryRun": True}, headers=AUTH
    )
    assert _error(unknown, 404) == "ERR_NOT_FOUND"
    issued = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients/upload-url", headers=AUTH
    )
    never_put = await harness.client.post(
        url, json={"s3Key": issued.json()["data"]["s3Key"], "dryRun": True}, headers=AUTH
    )
    assert _error(never_put, 400) == "ERR_CSV_INVALID"
    assert harness.csv_imports.dry_runs.docs == {}


async def test_a_campaign_that_is_no_draft_takes_no_dry_run(harness: Harness) -> None:
    campaign_id = await _draft(harness)
    key = await _uploaded(harness, campaign_id, SAMPLE)
    sent = await harness.client.post(f"{CAMPAIGNS}/{campaign_id}/send", headers=AUTH)
    assert sent.status_code == 200, sent.text
    refused = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/import-csv", json={"s3Key": key, "dryRun": True}, headers=AUTH
    )
    assert _error(refused, 400) == "ERR_CAMPAIGN_STATUS"
