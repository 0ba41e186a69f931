"""A dry run of a CSV audience before its import is confirmed (issue 10, item 4), over
the four real processes, Kafka and FerretDB: a file with a duplicate, a uid no user has
and a bad row is uploaded the CometChat way; its dry run (the real user-directory asked)
gives the numbers and the rejected rows as CSV and leaves the audience alone; the import
confirmed with the same key then reports exactly those numbers and imports the rest.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest

from clarion_devtools.devstack import Stack
from clarion_devtools.helpers import random_ref, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CAMPAIGNS = "/v3/campaigns/campaigns"
TEMPLATE = {
    "name": "Spring",
    "templateId": "spring",
    "status": "approved",
    "channels": [{"channelType": "in_app", "content": {"title": "Hi {{name}}", "body": "x"}}],
    "variableSchema": [{"key": "name", "defaultValue": "you"}],
}


async def _app(http: httpx.AsyncClient, admin_token: str, uids: list[str]) -> dict[str, str]:
    created = await http.post(
        "/admin/apps",
        json={"name": random_ref("dry")},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert created.status_code == 201, created.text
    auth = {"apikey": created.json()["data"]["apiKey"]}
    imported = await http.post(
        "/v3/users/import", json={"users": [{"uid": u, "name": u} for u in uids]}, headers=auth
    )
    assert imported.status_code == 200, imported.text
    channel = await http.post(
        "/v3/campaigns/channels",
        json={"name": "Feed", "type": "in_app", "enabled": True},
        headers=auth,
    )
    assert channel.status_code == 201, channel.text
    template = await http.post("/v3/campaigns/templates", json=TEMPLATE, headers=auth)
    assert template.status_code == 201, template.text
    return auth


async def _final(
    http: httpx.AsyncClient, auth: dict[str, str], url: str, busy: str
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await http.get(url, headers=auth)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return None if data["status"] == busy else data

    return await wait_until(probe, timeout_s=60, interval_s=0.2, what=f"the end of {url}")


async def test_a_dry_run_then_its_confirmed_import_agree(stack: Stack, admin_token: str) -> None:
    ref = random_ref("u")
    known = [f"{ref}-{i}" for i in range(5)]
    ghost = f"{ref}-ghost"
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as http:
        auth = await _app(http, admin_token, known)
        created = await http.post(
            CAMPAIGNS,
            json={"name": "Spring", "templateId": "spring", "templateVersion": 1},
            headers=auth,
        )
        assert created.status_code == 201, created.text
        url = f"{CAMPAIGNS}/{created.json()['data']['campaignId']}"
        content = "\r\n".join(
            [
                "user_id,name",  # 1
                f"{known[0]},Ann",  # 2
                f"{known[1]},Bob",  # 3
                f"{known[0]},Ann again",  # 4: duplicate of row 2
                f"{ghost},Nobody",  # 5: no such user
                "not a uid,Bad",  # 6: bad row
                f"{known[2]},Cy",  # 7
                "",
            ]
        ).encode()
        issued = await http.post(f"{url}/recipients/upload-url", headers=auth)
        assert issued.status_code == 201, issued.text
        upload = issued.json()["data"]
        put = await http.put(upload["uploadUrl"], content=content)
        assert put.status_code == 200, put.text

        started = await http.post(
            f"{url}/import-csv", json={"s3Key": upload["s3Key"], "dryRun": True}, headers=auth
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["data"]["dryRunId"]
        dry = await _final(http, auth, f"{url}/dry-runs/{run_id}", "running")
        assert dry["status"] == "completed", dry
        assert (dry["rows"], dry["accepted"], dry["duplicates"], dry["rejectedCount"]) == (
            6,
            3,
            1,
            2,
        )
        assert dry["processedBytes"] == dry["totalBytes"] == len(content)
        assert dry["duplicateRows"] == [{"row": 4, "userId": known[0], "firstRow": 2}]
        assert [(r["row"], r["code"]) for r in dry["rejected"]] == [
            (5, "ERR_USER_NOT_FOUND"),
            (6, "ERR_VALIDATION"),
        ]
        assert dry["columns"] == ["name"]

        rejected = await http.get(dry["rejectedCsv"], headers=auth)
        assert rejected.status_code == 200, rejected.text
        assert rejected.headers["content-type"].startswith("text/csv")
        records = list(csv.reader(io.StringIO(rejected.text)))
        assert records[0] == ["row", "user_id", "code", "message"]
        assert [r[:3] for r in records[1:]] == [
            ["5", ghost, "ERR_USER_NOT_FOUND"],
            ["6", "", "ERR_VALIDATION"],
        ]

        # Nothing imported yet: no recipient, no import.
        got = await http.get(url, headers=auth)
        assert got.json()["data"]["totalTargets"] == 0
        assert (await http.get(f"{url}/import-status", headers=auth)).status_code == 404

        confirmed = await http.post(
            f"{url}/import-csv", json={"s3Key": upload["s3Key"]}, headers=auth
        )
        assert confirmed.status_code == 202, confirmed.text
        done = await _final(http, auth, f"{url}/import-status", "processing")
        assert done["status"] == "completed", done
        assert (done["rows"], done["imported"], done["duplicates"], done["rejectedCount"]) == (
            dry["rows"],
            dry["accepted"],
            dry["duplicates"],
            dry["rejectedCount"],
        )
        assert done["rejected"] == dry["rejected"]
        listed = await http.get(f"{url}/recipients", params={"perPage": 100}, headers=auth)
        assert listed.status_code == 200, listed.text
        assert {r["userId"]: r["variables"] for r in listed.json()["data"]} == {
            known[0]: {"name": "Ann"},
            known[1]: {"name": "Bob"},
            known[2]: {"name": "Cy"},
        }
