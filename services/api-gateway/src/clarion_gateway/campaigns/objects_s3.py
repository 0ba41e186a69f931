"""The object store of uploads over the S3 API (``CLARION_GATEWAY_S3_*``): any
S3-compatible server (MinIO, SeaweedFS, Ceph, AWS S3, ...).

The SigV4 signatures are botocore's (AWS's reference signer, with S3's own rules: an
unsigned payload in presigned URLs, ``x-amz-content-sha256`` on the gateway's requests);
the requests go through httpx, the gateway's HTTP client, so a file streams out in
chunks and no second HTTP stack (aiobotocore's aiohttp) comes along. Object keys are
``{prefix}{app}/{campaign}/{upl_…}.csv``: a bucket listing or a lifecycle rule tells
the uploads of an app or a campaign apart.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]

from .objects import ObjectStoreUnavailable
from .uploads import CHUNK_BYTES, UploadIncomplete

TIMEOUT_S = 30.0  # of one request to the store (connect, or between two reads)
_ERROR_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")


@dataclass(frozen=True)
class ObjectStoreConfig:
    endpoint_url: str  # http(s)://host[:port][/path]
    bucket: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    key_prefix: str = ""
    # Path-style (``{endpoint}/{bucket}/{key}``), as self-hosted servers want, or
    # virtual-hosted (``{bucket}.{endpoint host}/{key}``), as AWS prefers.
    path_style: bool = True

    def url(self, key: str) -> str:
        """The object's URL (no query); the key is percent-encoded, ``/`` kept."""
        base = urlsplit(self.endpoint_url)
        root = base.path.rstrip("/")
        if self.path_style:
            return urlunsplit(
                (base.scheme, base.netloc, f"{root}/{self.bucket}/{quote(key)}", "", "")
            )
        host = f"{self.bucket}.{base.netloc}"
        return urlunsplit((base.scheme, host, f"{root}/{quote(key)}", "", ""))


def connect(config: ObjectStoreConfig | None) -> S3Objects | None:
    """The store ``config`` names (nothing started yet); None for none."""
    return S3Objects(config) if config is not None else None


class S3Objects:
    """The ``ObjectStore`` of an S3 API: botocore signs, httpx sends."""

    def __init__(self, config: ObjectStoreConfig, timeout_s: float = TIMEOUT_S) -> None:
        self.config = config
        self._credentials = Credentials(config.access_key, config.secret_key)
        self._timeout_s = timeout_s
        self._http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=self._timeout_s)

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def key(self, app_id: str, campaign_id: str, upload_id: str) -> str:
        return f"{self.config.key_prefix}{app_id}/{campaign_id}/{upload_id}.csv"

    def presign_put(self, key: str, ttl_s: int) -> str:
        request = AWSRequest(method="PUT", url=self.config.url(key))
        S3SigV4QueryAuth(self._credentials, "s3", self.config.region, expires=ttl_s).add_auth(
            request
        )
        return str(request.url)

    def signed_headers(self, method: str, url: str) -> dict[str, str]:
        """The SigV4 headers of a body-less request of the gateway's own."""
        request = AWSRequest(method=method, url=url)
        S3SigV4Auth(self._credentials, "s3", self.config.region).add_auth(request)
        return {str(name): str(value) for name, value in request.headers.items()}

    async def size(self, key: str) -> int | None:
        response = await self._send("HEAD", key)
        if response.status_code == 404:
            return None
        _check(response, "HEAD", key)
        return int(response.headers["content-length"])

    async def read(self, key: str) -> AsyncGenerator[bytes, None]:
        url = self.config.url(key)
        try:
            async with self._client().stream(
                "GET", url, headers=self.signed_headers("GET", url)
            ) as response:
                if response.status_code == 404:
                    raise UploadIncomplete(key)
                if response.status_code != 200:
                    await response.aread()
                    _check(response, "GET", key)
                async for chunk in response.aiter_bytes(CHUNK_BYTES):
                    yield chunk
        except httpx.HTTPError as exc:
            raise ObjectStoreUnavailable(f"GET {key}: {exc!r}") from exc

    async def delete(self, key: str) -> None:
        response = await self._send("DELETE", key)
        if response.status_code != 404:  # a bucket's 404 too: nothing to remove there
            _check(response, "DELETE", key)

    async def _send(self, method: str, key: str) -> httpx.Response:
        url = self.config.url(key)
        try:
            return await self._client().request(
                method, url, headers=self.signed_headers(method, url)
            )
        except httpx.HTTPError as exc:
            raise ObjectStoreUnavailable(f"{method} {key}: {exc!r}") from exc

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("the object store is not started")
        return self._http


def _check(response: httpx.Response, method: str, key: str) -> None:
    """Raise :class:`ObjectStoreUnavailable` unless the store answered a success."""
    if response.is_success:
        return
    found = _ERROR_CODE.search(response.content) if method != "HEAD" else None
    code = found.group(1).decode() if found else "-"
    raise ObjectStoreUnavailable(f"{method} {key}: {response.status_code} {code}")
