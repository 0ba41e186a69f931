"""Hostile CSV files through the whole import, over HTTP on the gateway harness (issue:
CSV audiences, item 5): whatever the bytes (other encodings, ragged rows, huge fields,
formula-looking cells, NUL bytes, empty files) and whichever way they come (multipart,
or an upload URL and import-csv), no answer is a 5xx, and the audience is either the
one it was plus what the import says it imported, or exactly the one it was.

The parser's own properties (the rules, chunking) are ``test_gateway_audience_csv_properties``.
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
KNOWN = ["u1", "u2", "u3", "u4", "u5", "e1"]
PRIOR = ["e1"]  # in the audience before the import

CELL = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=12),
    st.sampled_from(
        [
            "=cmd|' /C calc'!A0",
            "@SUM(1+1)",
            "+1",
            '=HYPERLINK("http://x")',
            "a\x00b",
            '"',
            '""',
            "\r",
            "x" * 70_000,  # a field over every variable limit
        ]
    ),
)
UID = st.one_of(st.sampled_from([*KNOWN, "ghost", "", "bad id", "u1\x00", " u2 "]), CELL)
HEADERS = st.sampled_from(
    ["user_id,name", "user_id", "name,user_id,code", "USER_ID,name", "uid,name", "", "user_id,"]
)
ENDS = st.sampled_from(["\n", "\r\n"])


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    header = draw(HEADERS)
    end = draw(ENDS)
    rows = draw(
        st.lists(
            st.lists(st.one_of(UID, CELL), min_size=0, max_size=4).map(",".join),
            max_size=8,
        )
    )
    first = draw(st.lists(UID, max_size=4))  # rows that start with a uid
    text = end.join([header, *(f"{uid},{draw(CELL)}" for uid in first), *rows])
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    return text.encode(encoding, errors="replace")


HOSTILE = st.one_of(
    csv_files(),
    st.binary(max_size=400),
    st.just(b""),
    st.just(b"\x00" * 64),
    st.just(b"user_id,name\n" + b"\xff\xfe" * 20),
)
SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _below_500(response: httpx.Response) -> httpx.Response:
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        assert response.json()["error"]["code"]  # the error envelope
    return response


async def _draft(harness: Harness) -> str:
    body = {"name": "Sale", "templateId": "promo", "templateVersion": 1}
    campaign_id: str = (await harness.client.post(CAMPAIGNS, json=body, headers=AUTH)).json()[
        "data"
    ]["id"]
    added = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients",
        json={"userIds": PRIOR, "userVariables": {"e1": {"name": "Eve"}}},
        headers=AUTH,
    )
    assert added.status_code == 201, added.text
    return campaign_id


async def _audience(harness: Harness, campaign_id: str) -> tuple[int, dict[str, Any]]:
    got = _below_500(await harness.client.get(f"{CAMPAIGNS}/{campaign_id}", headers=AUTH))
    listed = _below_500(
        await harness.client.get(
            f"{CAMPAIGNS}/{campaign_id}/recipients", params={"perPage": 100}, headers=AUTH
        )
    )
    total: int = got.json()["data"]["totalTargets"]
    return total, {r["userId"]: r["variables"] for r in listed.json()["data"]}


async def _started(harness: Harness, campaign_id: str, raw: bytes, via_url: bool) -> bool:
    """The file handed over one of the two ways; whether an import started."""
    if via_url:
        issued = _below_500(
            await harness.client.post(
                f"{CAMPAIGNS}/{campaign_id}/recipients/upload-url", headers=AUTH
            )
        ).json()["data"]
        _below_500(await harness.client.put(issued["uploadUrl"], content=raw))
        started = _below_500(
            await harness.client.post(
                f"{CAMPAIGNS}/{campaign_id}/import-csv",
                json={"s3Key": issued["s3Key"]},
                headers=AUTH,
            )
        )
    else:
        started = _below_500(
            await harness.client.post(
                f"{CAMPAIGNS}/{campaign_id}/recipients/csv",
                files={"file": ("audience.csv", raw, "text/csv")},
                headers=AUTH,
            )
        )
    assert started.status_code in (202, 400), started.text
    return started.status_code == 202


async def _settled(harness: Harness, campaign_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = _below_500(
            await harness.client.get(f"{CAMPAIGNS}/{campaign_id}/import-status", headers=AUTH)
        )
        data: dict[str, Any] = response.json()["data"]
        return None if data["status"] == "processing" else data

    return await wait_until(probe, timeout_s=20, interval_s=0.01, what="the import's end")


async def _check(harness: Harness, raw: bytes, via_url: bool) -> None:
    campaign_id = await _draft(harness)
    before = await _audience(harness, campaign_id)
    if not await _started(harness, campaign_id, raw, via_url):
        assert await _audience(harness, campaign_id) == before
        return
    status = await _settled(harness, campaign_id)
    total, recipients = await _audience(harness, campaign_id)
    if status["status"] == "failed":
        assert status["error"]["code"]
        assert (total, recipients) == before  # nothing of the file remains
    else:
        assert status["status"] == "completed"
        added = set(recipients) - set(before[1])
        assert {uid: recipients[uid] for uid in before[1]} == before[1]
        assert len(added) == status["imported"] == total - before[0]
        assert added <= set(KNOWN)
        assert len(recipients) == total
    assert harness.store.audience_locks.held == {}


def test_hostile_files_never_get_a_5xx_or_leave_half_an_audience() -> None:
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()
    harness = loop.run_until_complete(stack.enter_async_context(gateway_harness()))

    async def setup() -> None:
        await harness.create_channel()
        await harness.create_template(templateId="promo")
        harness.directory.add_users(DEV_APP, *KNOWN)

    @SETTINGS
    @given(HOSTILE, st.booleans())
    def example(raw: bytes, via_url: bool) -> None:
        loop.run_until_complete(_check(harness, raw, via_url))

    try:
        loop.run_until_complete(setup())
        example()
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()


def test_a_fifty_megabyte_file_is_imported_without_a_5xx() -> None:
    """Just under the 50 MiB limit: every row's note is over the variable limit, so every
    row is rejected with its number, and the import completes."""
    note = "n" * 9_000
    rows = [f"{KNOWN[i % 5]},{note}" for i in range(5_800)]
    raw = ("user_id,note\n" + "\n".join(rows) + "\n").encode()
    assert 50_000_000 < len(raw) < 50 * 1024 * 1024

    async def run() -> None:
        async with gateway_harness() as harness:
            await harness.create_channel()
            await harness.create_template(templateId="promo")
            harness.directory.add_users(DEV_APP, *KNOWN)
            for via_url in (True, False):
                campaign_id = await _draft(harness)
                assert await _started(harness, campaign_id, raw, via_url)
                status = await _settled(harness, campaign_id)
                assert status["status"] == "completed", status
                assert status["rows"] == 5_800
                assert status["imported"] == 0
                assert status["rejected"][0]["row"] == 2
                assert status["rejected"][0]["code"] == "ERR_INVALID_VARIABLES"
                assert await _audience(harness, campaign_id) == (1, {"e1": {"name": "Eve"}})

    asyncio.run(run())
