"""A dry run is the import it stands for (issue 10, item 4), over HTTP on the gateway
harness: whatever the file (ragged rows, bad or unknown or repeated uids, formula-looking
and over-long cells, other encodings, a bad header) and whichever way it comes
(multipart with ``dryRun=true``, or an upload URL and ``import-csv {dryRun: true}``),
the dry run leaves the audience as it was, and the import then confirmed with its
``s3Key`` reports exactly its numbers, rejected rows and failure; a multipart header
the dry run refuses, the import refuses the same way.

The hostile-file properties of the import itself are
``test_gateway_campaign_imports_properties``.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clarion_devtools.helpers import wait_until
from clarion_gateway.testing import AUTH, DEV_APP, Harness, gateway_harness

CAMPAIGNS = "/v3/campaigns/campaigns"
KNOWN = ["u1", "u2", "u3", "u4", "e1"]
PRIOR = ["e1"]

CELL = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=8),
    st.sampled_from(["=cmd|' /C calc'!A0", "+1", "a\x00b", '"', "\r", "x" * 9_000]),
)
UID = st.one_of(st.sampled_from([*KNOWN, "ghost", "-cmd", "", "bad id", " u2 "]), CELL)
HEADERS = st.sampled_from(["user_id,name", "user_id", "name,user_id", "uid,name", "user_id,"])


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    end = draw(st.sampled_from(["\n", "\r\n"]))
    rows = draw(
        st.lists(
            st.tuples(UID, st.lists(CELL, max_size=3)).map(lambda r: ",".join([r[0], *r[1]])),
            max_size=12,
        )
    )
    text = end.join([draw(HEADERS), *rows])
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1"]))
    return text.encode(encoding, errors="replace")


FILES = st.one_of(csv_files(), st.binary(max_size=200))
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _ok(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    return body


async def _draft(harness: Harness) -> str:
    body = {"name": "Sale", "templateId": "promo", "templateVersion": 1}
    campaign_id: str = _ok(await harness.client.post(CAMPAIGNS, json=body, headers=AUTH), 201)[
        "data"
    ]["id"]
    added = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients", json={"userIds": PRIOR}, headers=AUTH
    )
    _ok(added, 201)
    return campaign_id


async def _audience(harness: Harness, campaign_id: str) -> tuple[int, list[str]]:
    got = _ok(await harness.client.get(f"{CAMPAIGNS}/{campaign_id}", headers=AUTH), 200)
    listed = _ok(
        await harness.client.get(
            f"{CAMPAIGNS}/{campaign_id}/recipients", params={"perPage": 100}, headers=AUTH
        ),
        200,
    )
    return got["data"]["totalTargets"], sorted(r["userId"] for r in listed["data"])


async def _poll(harness: Harness, url: str, busy: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        data: dict[str, Any] = _ok(await harness.client.get(url, headers=AUTH), 200)["data"]
        return None if data["status"] == busy else data

    return await wait_until(probe, timeout_s=20, interval_s=0.01, what=f"the end of {url}")


async def _multipart(harness: Harness, campaign_id: str, raw: bytes, dry: bool) -> httpx.Response:
    return await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients/csv",
        params={"dryRun": "true"} if dry else {},
        files={"file": ("audience.csv", raw, "text/csv")},
        headers=AUTH,
    )


async def _dry_started(harness: Harness, campaign_id: str, raw: bytes, via_url: bool) -> Any:
    """The dry run's start (its answer's data), or the multipart's synchronous 400."""
    if not via_url:
        response = await _multipart(harness, campaign_id, raw, dry=True)
        if response.status_code == 400:
            return response
        return _ok(response, 202)["data"]
    issued = _ok(
        await harness.client.post(f"{CAMPAIGNS}/{campaign_id}/recipients/upload-url", headers=AUTH),
        201,
    )["data"]
    _ok(await harness.client.put(issued["uploadUrl"], content=raw), 200)
    started = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/import-csv",
        json={"s3Key": issued["s3Key"], "dryRun": True},
        headers=AUTH,
    )
    return _ok(started, 202)["data"]


async def _check(harness: Harness, raw: bytes, via_url: bool) -> None:
    campaign_id = await _draft(harness)
    before = await _audience(harness, campaign_id)
    started = await _dry_started(harness, campaign_id, raw, via_url)
    if isinstance(started, httpx.Response):  # the header refused at once: so is the import
        refused = await _multipart(harness, campaign_id, raw, dry=False)
        assert refused.status_code == 400
        assert refused.json()["error"] == started.json()["error"]
        assert await _audience(harness, campaign_id) == before
        return
    url = f"{CAMPAIGNS}/{campaign_id}"
    dry = await _poll(harness, f"{url}/dry-runs/{started['dryRunId']}", "running")
    assert await _audience(harness, campaign_id) == before
    assert harness.store.audience_locks.held == {}
    confirmed = await harness.client.post(
        f"{url}/import-csv", json={"s3Key": started["s3Key"]}, headers=AUTH
    )
    _ok(confirmed, 202)
    done = await _poll(harness, f"{url}/import-status", "processing")
    assert done["status"] == dry["status"], (dry, done)
    assert done.get("error") == dry.get("error")
    if dry["status"] == "completed":
        assert (done["rows"], done["imported"], done["duplicates"]) == (
            dry["rows"],
            dry["accepted"],
            dry["duplicates"],
        )
        assert done["rejectedCount"] == dry["rejectedCount"]
        assert done["rejected"][:100] == dry["rejected"]
        assert dry["rows"] == dry["accepted"] + dry["duplicates"] + dry["rejectedCount"]
        assert (await _audience(harness, campaign_id))[0] == before[0] + dry["accepted"]


def test_a_dry_run_reports_what_the_confirmed_import_does() -> None:
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()
    harness = loop.run_until_complete(stack.enter_async_context(gateway_harness()))

    async def setup() -> None:
        await harness.create_channel()
        await harness.create_template(templateId="promo")
        harness.directory.add_users(DEV_APP, *KNOWN)

    @SETTINGS
    @given(FILES, st.booleans())
    def example(raw: bytes, via_url: bool) -> None:
        loop.run_until_complete(_check(harness, raw, via_url))

    try:
        loop.run_until_complete(setup())
        example()
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()
