"""CSV imports through an S3-compatible object store: a real MinIO built by
``clarion_devtools.s3server`` (``make s3-install``), the gateway composed by
``Adapters.connect`` on the real MongoDB and broker, the user directory a fake.

Upload URLs are the store's presigned ones; the store refuses a tampered or an expired
one; ``import-csv`` finds the object, the import streams it and removes it; a crash
re-run reads it again; the settings refuse a store configured in part."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import pytest
import pytest_asyncio
from pydantic import ValidationError
from pymongo import AsyncMongoClient

from clarion_devtools import s3server
from clarion_devtools.helpers import random_ref, wait_until
from clarion_gateway.app import Adapters, Settings, compose
from clarion_gateway.campaigns.audience import AUDIENCE_LEASE_S
from clarion_gateway.campaigns.imports import (
    UPLOAD_RETENTION_S,
    ImportContext,
    ImportRunner,
    start_import,
)
from clarion_gateway.campaigns.objects_s3 import ObjectStoreConfig, S3Objects
from clarion_gateway.testing import AUTH, DEV_APP, MemoryBatchRegistry, MemoryDirectory
from clarion_shared.ids import now
from clarion_shared.settings import InfraSettings

CAMPAIGNS = "/v3/campaigns/campaigns"
CSV_MAX_BYTES = 64 * 1024  # this gateway's limit: small, so a file over it is cheap
TTL_S = 15 * 60


@dataclass
class Gateway:
    client: httpx.AsyncClient
    adapters: Adapters
    directory: MemoryDirectory
    objects: S3Objects  # the tests' own client of the store
    settings: Settings
    db: str


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3server.S3Server]:
    """MinIO on a free loopback port; a missing binary is built, or the tests fail."""
    with s3server.running(tmp_path_factory.mktemp("minio") / "data") as server:
        yield server


def _store_settings(server: s3server.S3Server, bucket: str) -> dict[str, Any]:
    return {
        "s3_endpoint_url": server.endpoint_url,
        "s3_bucket": bucket,
        "s3_access_key": server.access_key,
        "s3_secret_key": server.secret_key,
        "s3_key_prefix": "uploads/",
    }


async def _create_bucket(objects: S3Objects) -> None:
    url = f"{objects.config.endpoint_url}/{objects.config.bucket}"
    async with httpx.AsyncClient() as http:
        created = await http.put(url, headers=objects.signed_headers("PUT", url))
    assert created.status_code == 200, created.text


@pytest_asyncio.fixture(scope="module")
async def gw(
    s3_server: s3server.S3Server,
    infra_settings: InfraSettings,
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[Gateway]:
    """One gateway for the module (its broker consumers take a while to start), its
    database and bucket of its own; the campaigns' template made once."""
    db, bucket = random_ref("db").replace("-", "_"), random_ref("csv")
    settings = Settings(
        kafka_bootstrap_servers=infra_settings.kafka_bootstrap_servers,
        mongodb_url=infra_settings.mongodb_url,
        topic_prefix=infra_settings.topic_prefix,
        db_name=db,
        group_id=random_ref("s3-gateway"),
        csv_max_bytes=CSV_MAX_BYTES,
        **_store_settings(s3_server, bucket),
    )
    store = settings.object_store()
    assert store is not None
    objects = S3Objects(store)
    await objects.start()
    await _create_bucket(objects)
    directory = MemoryDirectory()
    # The real adapters (the store's among them), but no dispatcher nor user directory.
    adapters = replace(
        Adapters.connect(settings), batches=MemoryBatchRegistry(), directory=directory
    )
    app = compose(settings, adapters)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gw", timeout=30
            ) as client,
        ):
            await _template(client)
            yield Gateway(client, adapters, directory, objects, settings, db)
    finally:
        await objects.stop()
        await mongo_client.drop_database(db)


async def _template(client: httpx.AsyncClient) -> None:
    channel = {"name": "In-app", "type": "in_app", "enabled": True}
    created = await client.post("/v3/campaigns/channels", json=channel, headers=AUTH)
    assert created.status_code == 201, created.text
    template = {
        "name": "Promo",
        "templateId": "promo",
        "channels": [{"channelType": "in_app", "content": {"title": "Hi", "body": "Sale"}}],
    }
    created = await client.post("/v3/campaigns/templates", json=template, headers=AUTH)
    assert created.status_code == 201, created.text
    approved = await client.put(
        "/v3/campaigns/templates/promo", json={"status": "approved"}, headers=AUTH
    )
    assert approved.status_code == 200, approved.text


async def _draft(gw: Gateway) -> str:
    body = {"name": "Sale", "templateId": "promo", "templateVersion": 1}
    response = await gw.client.post(CAMPAIGNS, json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    campaign_id: str = response.json()["data"]["id"]
    return campaign_id


async def _upload_url(gw: Gateway, campaign_id: str) -> dict[str, Any]:
    response = await gw.client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients/upload-url", headers=AUTH
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def _put(url: str, content: bytes) -> httpx.Response:
    """A client's PUT: straight to the store, no apikey."""
    async with httpx.AsyncClient() as http:
        return await http.put(url, content=content, headers={"content-type": "text/csv"})


async def _import(gw: Gateway, campaign_id: str, key: str) -> httpx.Response:
    return await gw.client.post(
        f"{CAMPAIGNS}/{campaign_id}/import-csv", json={"s3Key": key}, headers=AUTH
    )


async def _settled(gw: Gateway, campaign_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await gw.client.get(f"{CAMPAIGNS}/{campaign_id}/import-status", headers=AUTH)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return None if data["status"] == "processing" else data

    return await wait_until(probe, timeout_s=30, interval_s=0.05, what="the import's end")


async def _recipients(gw: Gateway, campaign_id: str) -> dict[str, dict[str, Any]]:
    response = await gw.client.get(
        f"{CAMPAIGNS}/{campaign_id}/recipients", params={"perPage": 100}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    return {r["userId"]: r["variables"] for r in response.json()["data"]}


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    code: str = response.json()["error"]["code"]
    return code


def _runner(gw: Gateway) -> ImportRunner:
    """A second runner over the gateway's adapters: another gateway process, whose
    sweep is called here at chosen times."""
    a = gw.adapters
    context = ImportContext(
        a.campaigns, a.recipients, a.audience_locks, a.directory, a.csv_imports,
        gw.settings.csv_limits(),
    )  # fmt: skip
    return ImportRunner(context)


# ------------------------------------------------------------------ the store's URLs


@pytest.mark.integration
async def test_a_presigned_url_takes_the_file_and_import_csv_imports_it(gw: Gateway) -> None:
    campaign_id = await _draft(gw)
    gw.directory.add_users(DEV_APP, "u1", "u2", "u3")
    issued = await _upload_url(gw, campaign_id)
    key = issued["s3Key"]
    assert key.startswith(f"uploads/{DEV_APP}/{campaign_id}/upl_")
    assert key.endswith(".csv")
    url = urlsplit(issued["uploadUrl"])
    store = urlsplit(gw.objects.config.endpoint_url)
    assert (url.scheme, url.netloc) == (store.scheme, store.netloc)
    assert url.path == f"/{gw.objects.config.bucket}/{key}"  # path-style
    query = parse_qs(url.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == [str(TTL_S)]
    assert query["X-Amz-SignedHeaders"] == ["host"]
    assert issued["expiresAt"] - now() in range(TTL_S - 5, TTL_S + 1)

    content = (
        b"\xef\xbb\xbfuser_id,name,city\r\n"  # row 1
        b'u1,Ann,"Paris, FR"\r\n'  # 2
        b"u2,,Rome\r\n"  # 3
        b"u1,Dup,X\r\n"  # 4: a duplicate
        b"ghost,Gus,Oslo\r\n"  # 5: no such user
        b"bad uid,B,C\r\n"  # 6: not a uid
    )
    put = await _put(issued["uploadUrl"], content)
    assert put.status_code == 200, put.text
    assert await gw.objects.size(key) == len(content)

    started = await _import(gw, campaign_id, key)
    assert started.status_code == 202, started.text
    done = await _settled(gw, campaign_id)
    assert done["importId"] == started.json()["data"]["importId"]
    assert done["status"] == "completed", done
    assert (done["rows"], done["imported"], done["duplicates"]) == (5, 2, 1)
    assert [(r["row"], r["code"]) for r in done["rejected"]] == [
        (5, "ERR_USER_NOT_FOUND"),
        (6, "ERR_VALIDATION"),
    ]
    assert await _recipients(gw, campaign_id) == {
        "u1": {"name": "Ann", "city": "Paris, FR"},
        "u2": {"city": "Rome"},
    }
    # The object went with its import, and so did the key.
    assert await gw.objects.size(key) is None
    assert _error(await _import(gw, campaign_id, key), 404) == "ERR_NOT_FOUND"


@pytest.mark.integration
async def test_the_store_refuses_a_tampered_signature(gw: Gateway) -> None:
    campaign_id = await _draft(gw)
    issued = await _upload_url(gw, campaign_id)
    url = urlsplit(issued["uploadUrl"])
    query = parse_qs(url.query)
    signature = query["X-Amz-Signature"][0]
    forged = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    tampered = urlunsplit(url._replace(query=url.query.replace(signature, forged)))
    refused = await _put(tampered, b"user_id\nu1\n")
    assert refused.status_code == 403, refused.text
    assert "<Code>SignatureDoesNotMatch</Code>" in refused.text
    assert await gw.objects.size(issued["s3Key"]) is None
    # Nothing was uploaded with the key: import-csv says so.
    assert _error(await _import(gw, campaign_id, issued["s3Key"]), 400) == "ERR_CSV_INVALID"


@pytest.mark.integration
async def test_the_store_refuses_an_expired_url(gw: Gateway) -> None:
    key = gw.objects.key(DEV_APP, "cmp_expiry", random_ref("upl"))
    url = gw.objects.presign_put(key, ttl_s=1)  # X-Amz-Expires is at least 1 s

    async def refused() -> httpx.Response | None:
        response = await _put(url, b"user_id\nu1\n")
        return response if response.status_code == 403 else None

    response = await wait_until(refused, timeout_s=10, interval_s=0.2, what="the URL's expiry")
    assert "<Code>AccessDenied</Code>" in response.text
    assert "expired" in response.text
    await gw.objects.delete(key)  # what a PUT before the expiry stored


@pytest.mark.integration
async def test_import_csv_refuses_a_key_of_another_campaign_and_one_never_uploaded(
    gw: Gateway,
) -> None:
    mine, other = await _draft(gw), await _draft(gw)
    issued = await _upload_url(gw, mine)
    assert _error(await _import(gw, mine, issued["s3Key"]), 400) == "ERR_CSV_INVALID"
    put = await _put(issued["uploadUrl"], b"user_id\nu1\n")
    assert put.status_code == 200, put.text
    assert _error(await _import(gw, other, issued["s3Key"]), 404) == "ERR_NOT_FOUND"
    assert _error(await _import(gw, mine, "uploads/nope.csv"), 404) == "ERR_NOT_FOUND"
    # Refused, not consumed: the object is still there for its own campaign.
    assert await gw.objects.size(issued["s3Key"]) == len(b"user_id\nu1\n")
    gw.directory.add_users(DEV_APP, "u1")
    assert (await _import(gw, mine, issued["s3Key"])).status_code == 202
    assert (await _settled(gw, mine))["imported"] == 1


@pytest.mark.integration
async def test_a_file_over_the_limit_is_refused_by_import_csv_and_removed(gw: Gateway) -> None:
    campaign_id = await _draft(gw)
    issued = await _upload_url(gw, campaign_id)
    content = b"user_id,note\n" + b"u1," + b"x" * CSV_MAX_BYTES + b"\n"
    assert (await _put(issued["uploadUrl"], content)).status_code == 200
    too_large = await _import(gw, campaign_id, issued["s3Key"])
    assert _error(too_large, 413) == "ERR_PAYLOAD_TOO_LARGE"
    assert too_large.json()["error"]["details"] == {"maxBytes": CSV_MAX_BYTES}
    assert await gw.objects.size(issued["s3Key"]) is None
    # The URL still works until it expires: a smaller file may be imported.
    assert (await _put(issued["uploadUrl"], b"user_id\n")).status_code == 200
    assert (await _import(gw, campaign_id, issued["s3Key"])).status_code == 202
    assert (await _settled(gw, campaign_id))["status"] == "completed"


# ------------------------------------------------------------------ the runner


@pytest.mark.integration
async def test_a_crash_re_run_reads_the_object_again(gw: Gateway) -> None:
    campaign_id = await _draft(gw)
    gw.directory.add_users(DEV_APP, "r1", "r2")
    issued = await _upload_url(gw, campaign_id)
    assert (await _put(issued["uploadUrl"], b"user_id,n\nr1,1\nr2,2\n")).status_code == 200
    runner = _runner(gw)
    # An import whose process died before it read the file: processing, its lock held.
    job = await start_import(runner.context, DEV_APP, campaign_id, issued["s3Key"], now())
    imports = gw.adapters.csv_imports.imports
    assert await imports.latest(DEV_APP, campaign_id) == job
    resumed = await runner.sweep(job.started_at + AUDIENCE_LEASE_S + 1)
    assert [r.import_id for r in resumed] == [job.import_id]
    await runner.idle()
    done = await imports.latest(DEV_APP, campaign_id)
    assert done is not None
    assert (done.status, done.attempts, done.rows, done.imported) == ("completed", 2, 2, 2)
    assert await _recipients(gw, campaign_id) == {"r1": {"n": "1"}, "r2": {"n": "2"}}
    assert await gw.objects.size(issued["s3Key"]) is None


@pytest.mark.integration
async def test_the_sweep_removes_what_a_late_put_left_and_unused_keys(gw: Gateway) -> None:
    campaign_id = await _draft(gw)
    gw.directory.add_users(DEV_APP, "u1")
    imported, unused = await _upload_url(gw, campaign_id), await _upload_url(gw, campaign_id)
    assert (await _put(imported["uploadUrl"], b"user_id\nu1\n")).status_code == 200
    assert (await _import(gw, campaign_id, imported["s3Key"])).status_code == 202
    assert (await _settled(gw, campaign_id))["status"] == "completed"
    # A presigned URL takes PUTs until it expires, after its import too.
    assert (await _put(imported["uploadUrl"], b"user_id\nu1\n")).status_code == 200
    assert _error(await _import(gw, campaign_id, imported["s3Key"]), 404) == "ERR_NOT_FOUND"
    assert (await _put(unused["uploadUrl"], b"user_id\n")).status_code == 200
    runner = _runner(gw)
    await runner.sweep(imported["expiresAt"] + UPLOAD_RETENTION_S + 1)
    await runner.idle()
    assert await gw.objects.size(imported["s3Key"]) is None
    assert await gw.objects.size(unused["s3Key"]) is None
    assert await gw.adapters.csv_imports.keys.get(imported["s3Key"]) is None
    assert await gw.adapters.csv_imports.keys.get(unused["s3Key"]) is None


@pytest.mark.integration
async def test_a_direct_upload_is_kept_in_the_gateway_with_a_store_too(gw: Gateway) -> None:
    campaign_id = await _draft(gw)
    gw.directory.add_users(DEV_APP, "d1")
    response = await gw.client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients/csv",
        files={"file": ("audience.csv", b"user_id\nd1\n", "text/csv")},
        headers=AUTH,
    )
    assert response.status_code == 202, response.text
    done = await _settled(gw, campaign_id)
    assert (done["status"], done["imported"]) == ("completed", 1)


# ------------------------------------------------------------------ settings


def test_no_endpoint_and_no_bucket_is_no_object_store() -> None:
    assert Settings().object_store() is None


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"s3_bucket": "csv"}, "S3_ENDPOINT_URL"),
        ({"s3_endpoint_url": "http://127.0.0.1:9000", "s3_bucket": "csv"}, "S3_SECRET_KEY"),
        ({"s3_access_key": "a", "s3_secret_key": "s"}, "S3_BUCKET"),
        ({"s3_secret_key": "s"}, "S3_ACCESS_KEY"),
    ],
)
def test_a_store_configured_in_part_is_refused_at_start(
    given: dict[str, Any], missing: str
) -> None:
    with pytest.raises(ValidationError, match=f"in part.*missing: .*CLARION_GATEWAY_{missing}"):
        Settings(**given)


@pytest.mark.parametrize(
    ("field", "value", "refusal"),
    [
        ("s3_endpoint_url", "127.0.0.1:9000", "http"),
        ("s3_endpoint_url", "http://127.0.0.1:9000?x=1", "query"),
        ("s3_bucket", "Has_Capitals", "bucket name"),
        ("s3_key_prefix", "/abs/", "must not start with /"),
    ],
)
def test_a_store_misconfigured_is_refused_at_start(field: str, value: str, refusal: str) -> None:
    values: dict[str, Any] = {
        "s3_endpoint_url": "http://127.0.0.1:9000",
        "s3_bucket": "csv-uploads",
        "s3_access_key": "a",
        "s3_secret_key": "s",
        field: value,
    }
    with pytest.raises(ValidationError, match=refusal):
        Settings(**values)


def test_the_store_s_urls_path_style_or_virtual_hosted() -> None:
    config = ObjectStoreConfig("https://s3.example.com/base/", "csv", "a", "s")
    assert config.url("p/app/c/u 1.csv") == "https://s3.example.com/base/csv/p/app/c/u%201.csv"
    hosted = replace(config, path_style=False)
    assert hosted.url("k.csv") == "https://csv.s3.example.com/base/k.csv"
    assert "hidden" not in repr(replace(config, secret_key="hidden"))
