"""CSV audience imports over HTTP on the gateway harness: upload URLs and their PUT,
import-csv, the multipart upload, import-status, the body limits of uploads, and the
runner's background work (the lock, a dead process's imports run again)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.types import Message

from clarion_devtools.helpers import wait_until
from clarion_gateway.campaigns.audience import AUDIENCE_LEASE_S
from clarion_gateway.campaigns.domain import Campaign, Recipient
from clarion_gateway.campaigns.imports import (
    ERR_IMPORT_INTERRUPTED,
    MAX_ATTEMPTS,
    UPLOAD_RETENTION_S,
    CsvImport,
    ImportContext,
    ImportRunner,
)
from clarion_gateway.campaigns.uploads import CHUNK_BYTES, Upload, UploadSigner, signing_key
from clarion_gateway.testing import (
    ADMIN,
    AUTH,
    DEV_APP,
    Harness,
    MemoryAudienceLocks,
    MemoryCampaigns,
    MemoryDirectory,
    MemoryImportStorage,
    MemoryRecipients,
    gateway_harness,
    make_settings,
)
from clarion_shared.ids import now
from clarion_shared.settings import DEV_INTERNAL_TOKEN

CAMPAIGNS = "/v3/campaigns/campaigns"
MIB = 1024 * 1024


async def _draft(harness: Harness, template: bool = True) -> str:
    if template:
        await harness.create_channel()
        await harness.create_template(templateId="promo")
    body = {"name": "Sale", "templateId": "promo", "templateVersion": 1}
    response = await harness.client.post(CAMPAIGNS, json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    campaign_id: str = response.json()["data"]["id"]
    return campaign_id


async def _upload_url(harness: Harness, campaign_id: str) -> dict[str, Any]:
    response = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients/upload-url", headers=AUTH
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def _uploaded(harness: Harness, campaign_id: str, content: bytes) -> str:
    """An upload URL's key, its file PUT."""
    issued = await _upload_url(harness, campaign_id)
    put = await harness.client.put(issued["uploadUrl"], content=content)
    assert put.status_code == 200, put.text
    assert put.json()["data"] == {"s3Key": issued["s3Key"], "size": len(content)}
    key: str = issued["s3Key"]
    return key


async def _import(harness: Harness, campaign_id: str, key: str) -> httpx.Response:
    return await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/import-csv", json={"s3Key": key}, headers=AUTH
    )


async def _status(harness: Harness, campaign_id: str) -> httpx.Response:
    return await harness.client.get(f"{CAMPAIGNS}/{campaign_id}/import-status", headers=AUTH)


async def _settled(harness: Harness, campaign_id: str) -> dict[str, Any]:
    """import-status once the import is no longer processing."""

    async def probe() -> dict[str, Any] | None:
        response = await _status(harness, campaign_id)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return None if data["status"] == "processing" else data

    return await wait_until(probe, timeout_s=20, interval_s=0.01, what="the import's end")


async def _csv_upload(
    harness: Harness, campaign_id: str, content: bytes, field: str = "file"
) -> httpx.Response:
    return await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients/csv",
        files={field: ("audience.csv", content, "text/csv")},
        headers=AUTH,
    )


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    code: str = response.json()["error"]["code"]
    return code


async def _recipients(harness: Harness, campaign_id: str) -> dict[str, dict[str, Any]]:
    response = await harness.client.get(
        f"{CAMPAIGNS}/{campaign_id}/recipients", params={"perPage": 100}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    return {r["userId"]: r["variables"] for r in response.json()["data"]}


async def _total_targets(harness: Harness, campaign_id: str) -> int:
    response = await harness.client.get(f"{CAMPAIGNS}/{campaign_id}", headers=AUTH)
    total: int = response.json()["data"]["totalTargets"]
    return total


def _nothing_left(harness: Harness) -> None:
    """No upload key, file or audience lock is left behind."""
    assert harness.csv_imports.keys.docs == {}
    assert harness.csv_imports.chunks.docs == {}
    assert harness.store.audience_locks.held == {}


# ---------------------------------------------------------------- the CometChat way


async def test_an_upload_url_takes_one_put_and_import_csv_imports_it(harness: Harness) -> None:
    campaign_id = await _draft(harness)
    harness.directory.add_users(DEV_APP, "u1", "u2", "u3")
    issued = await _upload_url(harness, campaign_id)
    url = urlsplit(issued["uploadUrl"])
    assert (url.scheme, url.netloc) == ("http", "127.0.0.1:8080")  # CLARION_GATEWAY_PUBLIC_URL
    assert url.path == f"/uploads/{issued['s3Key']}"
    query = parse_qs(url.query)
    assert query["expires"] == [str(issued["expiresAt"])]
    assert len(query["signature"][0]) == 64
    assert issued["expiresAt"] - now() in range(15 * 60 - 5, 15 * 60 + 1)

    content = b'\xef\xbb\xbfuser_id,name,city\r\nu1,Ann,"Paris, FR"\r\nu2,,Rome\r\nu1,Dup,X\r\n'
    put = await harness.client.put(issued["uploadUrl"], content=content)  # no apikey
    assert put.status_code == 200, put.text
    assert put.json()["data"] == {"s3Key": issued["s3Key"], "size": len(content)}
    again = await harness.client.put(issued["uploadUrl"], content=content)
    assert _error(again, 409) == "ERR_CONFLICT"

    started = await _import(harness, campaign_id, issued["s3Key"])
    assert started.status_code == 202, started.text
    import_id = started.json()["data"]["importId"]
    done = await _settled(harness, campaign_id)
    assert done["importId"] == import_id
    assert done["status"] == "completed"
    assert (done["rows"], done["imported"], done["duplicates"]) == (3, 2, 1)
    assert done["rejected"] == []
    assert "error" not in done
    assert await _recipients(harness, campaign_id) == {
        "u1": {"name": "Ann", "city": "Paris, FR"},
        "u2": {"city": "Rome"},  # an empty cell leaves the variable to the defaults
    }
    assert await _total_targets(harness, campaign_id) == 2
    _nothing_left(harness)
    # The key went with its import.
    gone = await _import(harness, campaign_id, issued["s3Key"])
    assert _error(gone, 404) == "ERR_NOT_FOUND"


async def test_rejected_rows_carry_their_row_number_and_duplicates_count(
    harness: Harness,
) -> None:
    campaign_id = await _draft(harness)
    harness.directory.add_users(DEV_APP, "old", "u1", "u2")
    added = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients", json={"userIds": ["old"]}, headers=AUTH
    )
    assert added.status_code == 201, added.text
    content = (
        b"user_id,note\n"  # row 1
        b"u1,first\n"  # 2
        b"\n"  # 3: blank, numbered, not counted
        b'bad uid,"x"\n'  # 4: ERR_VALIDATION
        b'ghost,"two\nlines"\n'  # 5: unknown user (its quoted field spans a line)
        b"old,again\n"  # 6: already in the audience
        b"u2,a,b\n"  # 7: more fields than the header
        b"u2,second\n"  # 8
    )
    key = await _uploaded(harness, campaign_id, content)
    assert (await _import(harness, campaign_id, key)).status_code == 202
    done = await _settled(harness, campaign_id)
    assert done["status"] == "completed"
    assert (done["rows"], done["imported"], done["duplicates"]) == (6, 2, 1)
    assert [(r["row"], r.get("userId"), r["code"]) for r in done["rejected"]] == [
        (4, None, "ERR_VALIDATION"),
        (5, "ghost", "ERR_USER_NOT_FOUND"),
        (7, None, "ERR_CSV_INVALID"),
    ]
    assert done["rejectedCount"] == 3
    assert set(await _recipients(harness, campaign_id)) == {"old", "u1", "u2"}
    assert await _total_targets(harness, campaign_id) == 3


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"uid,name\nu1,Ann\n", "ERR_CSV_INVALID"),  # no user_id column
        (b"user_id,name\nu1,Caf\xe9\n", "ERR_CSV_INVALID"),  # Latin-1, not UTF-8
        (
            b"user_id\n" + b"".join(b"n%d\n" % i for i in range(9_999)),
            "ERR_TARGET_LIMIT_EXCEEDED",  # 9,999 new and 2 already there
        ),
    ],
)
async def test_a_file_that_fails_whole_imports_nothing(
    harness: Harness, content: bytes, code: str
) -> None:
    campaign_id = await _draft(harness)
    harness.directory.add_users(DEV_APP, "a", "b", "u1")
    added = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients", json={"userIds": ["a", "b"]}, headers=AUTH
    )
    assert added.status_code == 201, added.text
    key = await _uploaded(harness, campaign_id, content)
    assert (await _import(harness, campaign_id, key)).status_code == 202
    done = await _settled(harness, campaign_id)
    assert done["status"] == "failed"
    assert done["error"]["code"] == code
    assert done["error"]["message"]
    assert done["imported"] == 0
    assert set(await _recipients(harness, campaign_id)) == {"a", "b"}
    assert await _total_targets(harness, campaign_id) == 2
    _nothing_left(harness)


async def test_ten_thousand_recipients_in_all_fit(harness: Harness) -> None:
    campaign_id = await _draft(harness)
    uids = [f"n{i}" for i in range(10_000)]
    harness.directory.add_users(DEV_APP, *uids)
    content = b"user_id\n" + "".join(f"{uid}\n" for uid in uids).encode()
    await _import(harness, campaign_id, await _uploaded(harness, campaign_id, content))
    done = await _settled(harness, campaign_id)
    assert (done["status"], done["imported"]) == ("completed", 10_000)
    assert await _total_targets(harness, campaign_id) == 10_000
    assert harness.directory.calls[-1] == ("existing", 10_000)  # one lookup, after parsing


async def test_the_rejected_list_keeps_a_thousand_and_counts_all(harness: Harness) -> None:
    campaign_id = await _draft(harness)
    content = b"user_id\n" + b"".join(b"nobody%d\n" % i for i in range(1_500))
    await _import(harness, campaign_id, await _uploaded(harness, campaign_id, content))
    done = await _settled(harness, campaign_id)
    assert (done["imported"], done["rejectedCount"], len(done["rejected"])) == (0, 1500, 1000)
    assert [r["row"] for r in done["rejected"][:3]] == [2, 3, 4]


async def test_an_upload_url_is_signed_expiring_and_for_its_key(harness: Harness) -> None:
    campaign_id = await _draft(harness)
    issued = await _upload_url(harness, campaign_id)
    key, url = issued["s3Key"], urlsplit(issued["uploadUrl"])
    query = parse_qs(url.query)
    expires, signature = query["expires"][0], query["signature"][0]
    base = f"/uploads/{key}"
    for params in (
        {},
        {"expires": expires},
        {"signature": signature},
        {"expires": str(int(expires) + 1), "signature": signature},
        {"expires": expires, "signature": "0" * 64},
        {"expires": "soon", "signature": signature},
    ):
        refused = await harness.client.put(base, params=params, content=b"user_id\n")
        assert _error(refused, 403) == "ERR_FORBIDDEN", params
    other = await _upload_url(harness, campaign_id)
    swapped = await harness.client.put(
        f"/uploads/{other['s3Key']}", params=query, content=b"user_id\n"
    )
    assert _error(swapped, 403) == "ERR_FORBIDDEN"
    # Signed right, but past its time.
    signer = UploadSigner(signing_key("", DEV_INTERNAL_TOKEN, "dev"), "http://gw", 900)
    assert signer.url(key, int(expires)) == f"http://gw{base}?{url.query}"
    late = signer.url(key, now() - 1)
    assert _error(await harness.client.put(late, content=b"user_id\n"), 403) == "ERR_FORBIDDEN"
    assert harness.csv_imports.chunks.docs == {}
    ok = await harness.client.put(issued["uploadUrl"], content=b"user_id\n")
    assert ok.status_code == 200, ok.text


async def test_a_key_is_bound_to_its_campaign_and_app(harness: Harness) -> None:
    campaign_id = await _draft(harness)
    other_id = await _draft(harness, template=False)
    key = await _uploaded(harness, campaign_id, b"user_id\nu1\n")
    assert _error(await _import(harness, other_id, key), 404) == "ERR_NOT_FOUND"
    assert _error(await _import(harness, campaign_id, "upl_nope"), 404) == "ERR_NOT_FOUND"
    created = await harness.client.post(
        "/admin/apps", json={"name": "Other", "apiKey": "other-key-123"}, headers=ADMIN
    )
    assert created.status_code == 201, created.text
    other_app = {"apikey": "other-key-123"}
    for response in (
        await harness.client.post(
            f"{CAMPAIGNS}/{campaign_id}/import-csv", json={"s3Key": key}, headers=other_app
        ),
        await harness.client.post(
            f"{CAMPAIGNS}/{campaign_id}/recipients/upload-url", headers=other_app
        ),
        await harness.client.get(f"{CAMPAIGNS}/{campaign_id}/import-status", headers=other_app),
    ):
        assert _error(response, 404) == "ERR_NOT_FOUND"
    assert (await _import(harness, campaign_id, key)).status_code == 202


async def test_import_csv_needs_an_uploaded_file_and_a_draft(harness: Harness) -> None:
    campaign_id = await _draft(harness)
    issued = await _upload_url(harness, campaign_id)
    never = await _import(harness, campaign_id, issued["s3Key"])
    assert _error(never, 400) == "ERR_CSV_INVALID"
    missing = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/import-csv", json={}, headers=AUTH
    )
    assert _error(missing, 400) == "ERR_VALIDATION"
    key = await _uploaded(harness, campaign_id, b"user_id\nu1\n")
    cancelled = await harness.client.post(f"{CAMPAIGNS}/{campaign_id}/cancel", headers=AUTH)
    assert cancelled.status_code == 200, cancelled.text
    assert _error(await _import(harness, campaign_id, key), 400) == "ERR_CAMPAIGN_STATUS"
    url = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients/upload-url", headers=AUTH
    )
    assert _error(url, 400) == "ERR_CAMPAIGN_STATUS"
    assert _error(await _csv_upload(harness, campaign_id, b"user_id\n"), 400) == (
        "ERR_CAMPAIGN_STATUS"
    )


async def test_import_status_is_404_until_the_campaign_has_an_import(harness: Harness) -> None:
    campaign_id = await _draft(harness)
    assert _error(await _status(harness, campaign_id), 404) == "ERR_NOT_FOUND"
    unknown = await harness.client.get(f"{CAMPAIGNS}/cmp_nope/import-status", headers=AUTH)
    assert _error(unknown, 404) == "ERR_NOT_FOUND"
    for response in (
        await _import(harness, "cmp_nope", "upl_x"),
        await harness.client.post(f"{CAMPAIGNS}/cmp_nope/recipients/upload-url", headers=AUTH),
        await _csv_upload(harness, "cmp_nope", b"user_id\n"),
    ):
        assert _error(response, 404) == "ERR_NOT_FOUND"


async def test_import_csv_answers_once_per_idempotency_key(harness: Harness) -> None:
    campaign_id = await _draft(harness)
    key = await _uploaded(harness, campaign_id, b"user_id\n")
    headers = {**AUTH, "Idempotency-Key": "import-1"}
    url = f"{CAMPAIGNS}/{campaign_id}/import-csv"
    first = await harness.client.post(url, json={"s3Key": key}, headers=headers)
    assert first.status_code == 202, first.text
    await _settled(harness, campaign_id)
    again = await harness.client.post(url, json={"s3Key": key}, headers=headers)
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


# ---------------------------------------------------------------- one import at a time


class BlockedDirectory(MemoryDirectory):
    """The directory, answering ``existing`` only once ``go`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()
        self.asked = asyncio.Event()

    async def existing(self, app_id: str, uids: Sequence[str]) -> set[str]:
        self.asked.set()
        await self.go.wait()
        return await super().existing(app_id, uids)


async def test_an_import_holds_the_audience_from_start_to_end(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign_id = await _draft(harness)
    harness.directory.add_users(DEV_APP, "u1", "u2")
    blocked = BlockedDirectory()
    blocked.users = harness.directory.users
    monkeypatch.setattr(harness.directory, "existing", blocked.existing)
    first = await _uploaded(harness, campaign_id, b"user_id\nu1\n")
    second = await _uploaded(harness, campaign_id, b"user_id\nu2\n")
    assert (await _import(harness, campaign_id, first)).status_code == 202
    await asyncio.wait_for(blocked.asked.wait(), 10)
    status = await _status(harness, campaign_id)
    assert status.json()["data"]["status"] == "processing"
    assert _error(await _import(harness, campaign_id, second), 409) == "ERR_CONFLICT"
    assert _error(await _csv_upload(harness, campaign_id, b"user_id\nu2\n"), 409) == (
        "ERR_CONFLICT"
    )
    addition = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients", json={"userIds": ["u2"]}, headers=AUTH
    )
    assert _error(addition, 409) == "ERR_CONFLICT"
    blocked.go.set()
    assert (await _settled(harness, campaign_id))["imported"] == 1
    # The refused direct upload left nothing; the second key waits for its import.
    assert set(harness.csv_imports.keys.docs) == {second}
    assert (await _import(harness, campaign_id, second)).status_code == 202
    assert (await _settled(harness, campaign_id))["imported"] == 1
    assert set(await _recipients(harness, campaign_id)) == {"u1", "u2"}
    _nothing_left(harness)


# ---------------------------------------------------------------- direct upload


async def test_a_multipart_upload_is_stored_and_imported(harness: Harness) -> None:
    campaign_id = await _draft(harness)
    harness.directory.add_users(DEV_APP, "u1")
    started = await _csv_upload(harness, campaign_id, b"user_id,name\nu1,Ann\nu9,Nobody\n")
    assert started.status_code == 202, started.text
    done = await _settled(harness, campaign_id)
    assert done["importId"] == started.json()["data"]["importId"]
    assert (done["status"], done["rows"], done["imported"]) == ("completed", 2, 1)
    assert done["rejected"] == [
        {"row": 3, "userId": "u9", "code": "ERR_USER_NOT_FOUND", "message": "No such user."}
    ]
    assert await _recipients(harness, campaign_id) == {"u1": {"name": "Ann"}}
    _nothing_left(harness)


@pytest.mark.parametrize(
    "content",
    [
        b"uid,name\nu1,Ann\n",
        b"",
        b"user_id,user_id\n",
        b"user_id,1bad\n",
        b"user_id,na\xe9me\nu1,x\n",
    ],
)
async def test_a_refused_header_is_a_synchronous_400_and_leaves_nothing(
    harness: Harness, content: bytes
) -> None:
    campaign_id = await _draft(harness)
    refused = await _csv_upload(harness, campaign_id, content)
    assert _error(refused, 400) == "ERR_CSV_INVALID"
    assert refused.json()["error"]["message"]
    assert _error(await _status(harness, campaign_id), 404) == "ERR_NOT_FOUND"
    _nothing_left(harness)


async def test_what_follows_a_good_header_is_judged_by_the_import(harness: Harness) -> None:
    campaign_id = await _draft(harness)
    started = await _csv_upload(harness, campaign_id, b"user_id\nu1\n\xff\xfe\n")
    assert started.status_code == 202, started.text
    done = await _settled(harness, campaign_id)
    assert (done["status"], done["error"]["code"]) == ("failed", "ERR_CSV_INVALID")
    assert "UTF-8" in done["error"]["message"]


async def test_a_header_only_file_imports_no_one(harness: Harness) -> None:
    campaign_id = await _draft(harness)
    assert (await _csv_upload(harness, campaign_id, b"user_id,name")).status_code == 202
    done = await _settled(harness, campaign_id)
    assert (done["status"], done["rows"], done["imported"]) == ("completed", 0, 0)


async def test_a_multipart_upload_needs_a_file_field(harness: Harness) -> None:
    campaign_id = await _draft(harness)
    url = f"{CAMPAIGNS}/{campaign_id}/recipients/csv"
    not_form = await harness.client.post(url, content=b"user_id\nu1\n", headers=AUTH)
    assert _error(not_form, 400) == "ERR_VALIDATION"
    other_field = await _csv_upload(harness, campaign_id, b"user_id\nu1\n", field="upload")
    assert _error(other_field, 400) == "ERR_VALIDATION"
    cut = await harness.client.post(
        url,
        content=b'--b\r\nContent-Disposition: form-data; name="file"\r\n\r\nuser_id\nu1\n',
        headers={**AUTH, "content-type": "multipart/form-data; boundary=b"},
    )
    assert _error(cut, 400) == "ERR_VALIDATION"
    _nothing_left(harness)


# ---------------------------------------------------------------- sizes


async def test_uploads_over_the_csv_limit_are_413_and_leave_nothing() -> None:
    async with gateway_harness(make_settings(csv_max_bytes=1000)) as harness:
        campaign_id = await _draft(harness)
        issued = await _upload_url(harness, campaign_id)
        content = b"user_id\n" + b"u\n" * 497  # 1,002 bytes
        too_large = await harness.client.put(issued["uploadUrl"], content=content)
        assert _error(too_large, 413) == "ERR_PAYLOAD_TOO_LARGE"
        assert too_large.json()["error"]["details"] == {"maxBytes": 1000}
        assert harness.csv_imports.chunks.docs == {}

        async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: counted
            for _ in range(10):
                yield b"u\n" * 100

        chunked = await harness.client.put(issued["uploadUrl"], content=streamed())
        assert _error(chunked, 413) == "ERR_PAYLOAD_TOO_LARGE"
        # A PUT that failed leaves its URL usable.
        fits = await harness.client.put(issued["uploadUrl"], content=content[:1000])
        assert fits.status_code == 200, fits.text
        direct = await _csv_upload(harness, campaign_id, content)
        assert _error(direct, 413) == "ERR_PAYLOAD_TOO_LARGE"
        assert set(harness.csv_imports.keys.docs) == {issued["s3Key"]}
        assert len(harness.csv_imports.chunks.docs) == 1


async def test_uploads_take_more_than_other_bodies_and_only_they_do(harness: Harness) -> None:
    campaign_id = await _draft(harness)
    row = b"n%06d," + b"v" * 1000 + b"\n"
    content = b"user_id,note\n" + b"".join(row % i for i in range(9_000))  # over 8 MiB
    assert len(content) > 8 * MIB
    key = await _uploaded(harness, campaign_id, content)
    chunks = harness.csv_imports.chunks.docs
    full = len(content) // CHUNK_BYTES
    assert sorted(n for _, n in chunks) == list(range(full + 1))
    assert all(len(data) == CHUNK_BYTES for (_, n), data in chunks.items() if n < full)
    assert (await _import(harness, campaign_id, key)).status_code == 202
    done = await _settled(harness, campaign_id)
    assert (done["rows"], done["rejectedCount"]) == (9_000, 9_000)  # nobody is a user
    started = await _csv_upload(harness, campaign_id, content)
    assert started.status_code == 202, started.text
    direct = await _settled(harness, campaign_id)
    assert direct["importId"] == started.json()["data"]["importId"]
    assert (direct["rows"], direct["rejectedCount"]) == (9_000, 9_000)
    # Every other route keeps the 8 MiB limit.
    body = json.dumps({"userIds": ["u1"], "pad": "x" * (8 * MIB)}).encode()
    for url in (f"{CAMPAIGNS}/{campaign_id}/recipients", f"{CAMPAIGNS}/{campaign_id}/import-csv"):
        refused = await harness.client.post(
            url, content=body, headers={**AUTH, "content-type": "application/json"}
        )
        assert _error(refused, 413) == "ERR_PAYLOAD_TOO_LARGE", url
    wrong_method = await harness.client.post(f"/uploads/{key}", content=content)
    assert _error(wrong_method, 413) == "ERR_PAYLOAD_TOO_LARGE"


async def test_a_declared_length_over_the_limit_is_refused_before_reading(
    harness: Harness,
) -> None:
    messages: list[dict[str, Any]] = []
    bodies = [{"type": "http.request", "body": b"user_id\n", "more_body": False}]

    async def receive() -> dict[str, Any]:
        return bodies.pop() if bodies else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        messages.append(dict(message))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": "/uploads/upl_x",
        "raw_path": b"/uploads/upl_x",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-length", str(51 * MIB).encode()), (b"host", b"gw")],
        "client": ("127.0.0.1", 1),
        "server": ("gw", 80),
        "state": {},
    }
    await harness.app(scope, receive, send)
    assert messages[0]["status"] == 413
    # The route (which would refuse the unsigned PUT with 403) was not reached.
    assert json.loads(messages[1]["body"])["error"]["code"] == "ERR_PAYLOAD_TOO_LARGE"


# ---------------------------------------------------------------- the runner


def _context(
    storage: MemoryImportStorage,
    directory: MemoryDirectory,
    recipients: MemoryRecipients | None = None,
) -> ImportContext:
    return ImportContext(
        MemoryCampaigns(),
        recipients or MemoryRecipients(),
        MemoryAudienceLocks(),
        directory,
        storage.storage(),
    )


async def _stored(
    context: ImportContext, storage: MemoryImportStorage, content: bytes, at: int
) -> None:
    """A draft ``cmp`` and the file ``upl_1`` uploaded for it."""
    campaign = Campaign("app", "cmp", "Sale", "promo", 1, "draft", at, at)
    await context.campaigns.insert(campaign)
    size = len(content)
    await storage.keys.insert(Upload("upl_1", "app", "cmp", at, at, used=True, size=size))
    for n in range(-(-size // CHUNK_BYTES)):
        await storage.chunks.put("upl_1", n, content[n * CHUNK_BYTES : (n + 1) * CHUNK_BYTES])


async def _dead_import(
    context: ImportContext, storage: MemoryImportStorage, content: bytes, **fields: Any
) -> CsvImport:
    """An import whose process died ``AUDIENCE_LEASE_S`` ago, its lock still held."""
    at = now() - AUDIENCE_LEASE_S - 1
    await _stored(context, storage, content, at)
    assert await context.locks.acquire("app", "cmp", "dead", at, AUDIENCE_LEASE_S)
    job = CsvImport("app", "cmp", "imp_1", "upl_1", len(content), "dead", at, at, at)
    job = replace(job, **fields)
    await storage.imports.insert(job)
    return job


async def test_a_dead_processs_import_is_run_again_and_counts_what_it_wrote() -> None:
    storage, directory = MemoryImportStorage(), MemoryDirectory()
    directory.add_users("app", "old", "u1", "u2", "u3")
    context = _context(storage, directory)
    # The audience had "old"; the dead attempt noted it and wrote u1 before it died.
    job = await _dead_import(
        context, storage, b"user_id,n\nu1,1\nu2,2\nold,x\nu3,3\nu1,again\n", base=1
    )
    at = job.created_at
    await context.recipients.add(
        [
            Recipient("app", "cmp", "old", 0, at, at),
            Recipient("app", "cmp", "u1", 1, at, at, {"n": "1"}),
        ]
    )
    runner = ImportRunner(context)
    resumed = await runner.sweep(now())
    assert [(j.import_id, j.attempts) for j in resumed] == [("imp_1", 2)]
    await runner.idle()
    done = await storage.imports.latest("app", "cmp")
    assert done is not None
    assert (done.status, done.rows, done.imported, done.duplicates) == ("completed", 5, 3, 2)
    audience = {r.uid: r for r in await context.recipients.list("app", "cmp")}
    assert {uid: r.seq for uid, r in audience.items()} == {"old": 0, "u1": 1, "u2": 2, "u3": 3}
    assert audience["u3"].variables == {"n": "3"}
    campaign = await context.campaigns.get("app", "cmp")
    assert campaign is not None
    assert campaign.total_targets == 4
    assert storage.keys.docs == {}
    assert storage.chunks.docs == {}
    assert await context.locks.acquire("app", "cmp", "next", now(), 60)  # released


class FlakyRecipients(MemoryRecipients):
    """Its first write stores one recipient, then fails (the database went away)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def add(self, recipients: Sequence[Recipient]) -> None:
        if not self.failed:
            self.failed = True
            await super().add(recipients[:1])
            raise ConnectionError("the database went away")
        await super().add(recipients)


async def test_an_import_whose_writes_were_cut_short_is_left_to_the_sweep() -> None:
    storage, directory, recipients = MemoryImportStorage(), MemoryDirectory(), FlakyRecipients()
    directory.add_users("app", "u1", "u2")
    context = _context(storage, directory, recipients)
    await _stored(context, storage, b"user_id\nu1\nu2\n", now())
    runner = ImportRunner(context)
    job = await runner.begin("app", "cmp", "upl_1", now())
    await runner.idle()
    cut = await storage.imports.latest("app", "cmp")
    assert cut is not None
    assert (cut.status, cut.base) == ("processing", 0)
    assert await recipients.uids("app", "cmp") == {"u1"}
    assert not await context.locks.acquire("app", "cmp", "other", now(), 60)  # still held
    assert len(await runner.sweep(now() + AUDIENCE_LEASE_S)) == 1
    await runner.idle()
    done = await storage.imports.latest("app", "cmp")
    assert done is not None
    assert done.import_id == job.import_id
    assert (done.status, done.attempts, done.imported, done.duplicates) == ("completed", 2, 2, 0)
    campaign = await context.campaigns.get("app", "cmp")
    assert campaign is not None
    assert campaign.total_targets == 2


async def test_the_sweep_leaves_live_imports_and_gives_up_after_the_attempts() -> None:
    storage, directory = MemoryImportStorage(), MemoryDirectory()
    context = _context(storage, directory)
    job = await _dead_import(context, storage, b"user_id\nu1\n", attempts=MAX_ATTEMPTS)
    runner = ImportRunner(context)
    # Within its lease the import is taken as running somewhere.
    assert await runner.sweep(job.started_at + AUDIENCE_LEASE_S - 1) == []
    assert await runner.sweep(now()) == []
    failed = await storage.imports.latest("app", "cmp")
    assert failed is not None
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.code == ERR_IMPORT_INTERRUPTED
    assert storage.chunks.docs == {}
    assert await context.locks.acquire("app", "cmp", "next", now(), 60)


async def test_the_sweep_waits_for_a_lock_another_holds() -> None:
    storage, directory = MemoryImportStorage(), MemoryDirectory()
    context = _context(storage, directory)
    job = await _dead_import(context, storage, b"user_id\nu1\n")
    await context.locks.release("app", "cmp", "dead")
    assert await context.locks.acquire("app", "cmp", "someone", now(), AUDIENCE_LEASE_S)
    runner = ImportRunner(context)
    assert await runner.sweep(now()) == []
    still = await storage.imports.latest("app", "cmp")
    assert still == job


async def test_the_runner_sweeps_at_start_and_its_stop_cancels_imports() -> None:
    storage, directory = MemoryImportStorage(), BlockedDirectory()
    directory.add_users("app", "u1")
    context = _context(storage, directory)
    await _dead_import(context, storage, b"user_id\nu1\n")
    runner = ImportRunner(context)
    await runner.start()
    await asyncio.wait_for(directory.asked.wait(), 10)  # resumed at start, now running
    await runner.stop()
    job = await storage.imports.latest("app", "cmp")
    assert job is not None
    assert (job.status, job.attempts) == ("processing", 2)  # for a later sweep
    assert storage.chunks.docs != {}
    # A later sweep, past the new lease, finishes it.
    directory.go.set()
    later = ImportRunner(context)
    assert len(await later.sweep(now() + AUDIENCE_LEASE_S)) == 1
    await later.idle()
    done = await storage.imports.latest("app", "cmp")
    assert done is not None
    assert (done.status, done.imported) == ("completed", 1)


async def test_the_sweep_drops_uploads_never_imported() -> None:
    storage, directory = MemoryImportStorage(), MemoryDirectory()
    context = _context(storage, directory)
    at = now()
    old = at - UPLOAD_RETENTION_S - 1
    await storage.keys.insert(Upload("upl_old", "app", "cmp", old, old, used=True, size=3))
    await storage.chunks.put("upl_old", 0, b"abc")
    await storage.keys.insert(Upload("upl_new", "app", "cmp", at, at + 900))
    runner = ImportRunner(context)
    assert await runner.sweep(at) == []
    assert set(storage.keys.docs) == {"upl_new"}
    assert storage.chunks.docs == {}


# ---------------------------------------------------------------- settings


def test_production_needs_an_upload_secret() -> None:
    assert signing_key("s3cret", "t0ken", "production") == b"s3cret"
    with pytest.raises(ValueError, match="CLARION_GATEWAY_UPLOAD_SECRET"):
        signing_key("", "t0ken", "production")
    derived = signing_key("", "t0ken", "dev")
    assert derived not in (b"t0ken", signing_key("", "other", "dev"))


async def test_the_upload_url_settings_are_used() -> None:
    settings = make_settings(
        public_url="https://api.example.com/", upload_url_ttl_s=120, upload_secret="s3cret"
    )
    async with gateway_harness(settings) as harness:
        campaign_id = await _draft(harness)
        issued = await _upload_url(harness, campaign_id)
        assert issued["uploadUrl"].startswith(f"https://api.example.com/uploads/{issued['s3Key']}?")
        assert issued["expiresAt"] - now() in range(115, 121)
        signer = UploadSigner(b"s3cret", "https://api.example.com", 120)
        assert issued["uploadUrl"] == signer.url(issued["s3Key"], issued["expiresAt"])


async def test_the_upload_limit_is_50_mib(harness: Harness) -> None:
    campaign_id = await _draft(harness)
    issued = await _upload_url(harness, campaign_id)
    block = b"user_id\n" + b"u\n" * (MIB // 2 - 4)  # one MiB

    async def streamed(extra: bytes) -> AsyncIterator[bytes]:
        for _ in range(50):
            yield block
        yield extra

    over = await harness.client.put(issued["uploadUrl"], content=streamed(b"u"))
    assert _error(over, 413) == "ERR_PAYLOAD_TOO_LARGE"
    assert over.json()["error"]["details"] == {"maxBytes": 50 * MIB}
    assert harness.csv_imports.chunks.docs == {}
    exactly = await harness.client.put(issued["uploadUrl"], content=streamed(b""))
    assert exactly.status_code == 200, exactly.text
    assert exactly.json()["data"]["size"] == 50 * MIB
