"""CSV files uploaded for a campaign's audience: the signed upload URL and the stored file.

CometChat hands out a presigned S3 URL, and so does Clarion when an S3-compatible store
is configured (``objects``); while none is, Clarion's ``uploadUrl`` points at the gateway
itself (``PUT /uploads/{key}``). The URL carries ``expires`` and ``signature``, the hex
HMAC-SHA256 of ``PUT\\n{key}\\n{expires}`` under the gateway's upload secret: they
replace the apikey for that one PUT. The key's document (:class:`Upload`) binds it to
its app and campaign, says whether a PUT took it (one only) and, once the file is stored,
its size. The file is kept in chunks of ``CHUNK_BYTES`` in the gateway's database, so
any gateway instance can import it, streamed in and out: no request or import holds a
whole file in memory. A multipart upload (``file_part``) is stored the same way under a
key of its own, its header checked as it arrives (``store_checked``), with or without
an object store.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote, urlencode

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from clarion_shared.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from clarion_shared.ids import new_id
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger

from .audience_csv import AudienceCsvFailed, AudienceParser, CsvLimits

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

log = get_logger(__name__)

CHUNK_BYTES = 256 * 1024
CSV_MAX_BYTES = 50 * 1024 * 1024  # API.md: CSV uploads up to 50 MiB
_SIGNED = "PUT\n{key}\n{expires}"
# What the dev secret is derived from the internal token with (production refuses it).
_DERIVATION_LABEL = b"clarion-gateway upload URLs"


@dataclass(frozen=True)
class Upload:
    """One upload key, issued for one campaign of one app."""

    key: str
    app_id: str
    campaign_id: str
    created_at: int
    expires_at: int  # the PUT's deadline
    used: bool = False  # a PUT took the key (one only, unless it failed); of a store's: imported
    size: int | None = None  # the stored file's bytes, once its PUT completed
    # The file is PUT to the object store (``objects``), not to the gateway's chunks.
    in_object_store: bool = False


@dataclass(frozen=True)
class UploadUrl:
    url: str
    key: str
    expires_at: int


class UploadRefused(Forbidden):
    """A PUT without a valid signature, or after its URL expired (403)."""

    def __init__(self, why: str) -> None:
        super().__init__("The upload URL is not valid or has expired.", dev_message=why)


class UploadUsed(Conflict):
    def __init__(self) -> None:
        super().__init__(
            "The upload URL was used already.",
            dev_message="An upload URL takes one PUT; ask POST .../recipients/upload-url "
            "for another.",
        )


class UploadTooLarge(DomainError):
    """The file is over the upload limit (413 ``ERR_PAYLOAD_TOO_LARGE``)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The CSV is larger than {limit // (1024 * 1024)} MiB.",
            dev_message=f"CSV uploads are limited to {limit} bytes.",
            details={"maxBytes": limit},
        )


class UploadNotFound(NotFound):
    """No such key for this campaign (another app's or campaign's key included)."""

    def __init__(self) -> None:
        super().__init__("Upload", dev_message="No upload with this s3Key for the campaign.")


class NothingUploaded(DomainError):
    """The key's file was never (completely) uploaded (400 ``ERR_CSV_INVALID``)."""

    def __init__(self) -> None:
        super().__init__(
            "No file was uploaded with this s3Key.",
            dev_message="PUT the CSV to the uploadUrl first (its answer gives the size).",
        )


class UploadIncomplete(DomainError):
    """A chunk of a stored file is missing (it was removed while being imported)."""

    def __init__(self, key: str) -> None:
        super().__init__(
            "The uploaded file is no longer complete; upload it again.",
            dev_message=f"A chunk of upload {key} is missing.",
        )


class UploadKeys(Resource, Protocol):
    async def insert(self, upload: Upload) -> None: ...

    async def get(self, key: str) -> Upload | None: ...

    async def claim(self, key: str) -> bool:
        """Mark it used; False when it is already."""
        ...

    async def release(self, key: str) -> None:
        """Unused again: its PUT failed before the file was stored."""
        ...

    async def stored(self, key: str, size: int) -> None:
        """Its file is stored whole (``size`` bytes)."""
        ...

    async def expired(self, before: int) -> list[str]:
        """The keys whose PUT deadline is before ``before``."""
        ...

    async def delete(self, key: str) -> None: ...


class UploadChunks(Resource, Protocol):
    async def put(self, key: str, n: int, data: bytes) -> None:
        """Store chunk ``n`` (from 0) of ``key``'s file."""
        ...

    async def get(self, key: str, n: int) -> bytes | None: ...

    async def delete(self, key: str) -> None:
        """Every chunk of ``key``'s file."""
        ...


def signing_key(secret: str, internal_token: str, environment: str) -> bytes:
    """The configured upload secret; in dev, one derived from the internal token."""
    if secret:
        return secret.encode()
    if environment == "production":
        raise ValueError("CLARION_GATEWAY_UPLOAD_SECRET must be set in production")
    return hmac.new(internal_token.encode(), _DERIVATION_LABEL, hashlib.sha256).digest()


@dataclass(frozen=True)
class UploadSigner:
    """Makes and checks the signed upload URLs of ``public_url`` (the gateway's own)."""

    secret: bytes
    public_url: str
    ttl_s: int

    def signature(self, key: str, expires: int) -> str:
        message = _SIGNED.format(key=key, expires=expires).encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def url(self, key: str, expires: int) -> str:
        query = urlencode({"expires": expires, "signature": self.signature(key, expires)})
        return f"{self.public_url.rstrip('/')}/uploads/{quote(key, safe='')}?{query}"

    def check(self, key: str, expires: str | None, signature: str | None, now: int) -> None:
        """Raise :class:`UploadRefused` unless the query signs ``key`` and is not expired."""
        if not expires or not signature:
            raise UploadRefused("The URL needs its expires and signature parameters.")
        if not expires.isascii() or not expires.isdigit() or len(expires) > 12:
            raise UploadRefused("expires is not a Unix time.")
        expected = self.signature(key, int(expires)).encode()
        if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
            raise UploadRefused("The signature does not match.")
        if int(expires) < now:
            raise UploadRefused("The upload URL has expired.")


async def store_file(
    chunks: UploadChunks,
    key: str,
    content: AsyncIterable[bytes],
    max_bytes: int,
    observe: Callable[[bytes], None] | None = None,
) -> int:
    """Store ``content`` as ``key``'s file in chunks of ``CHUNK_BYTES``; its size.

    ``observe`` sees each piece as it arrives (the header check of a direct upload);
    over ``max_bytes`` is :class:`UploadTooLarge` as soon as it is passed. What was
    stored is the caller's to remove when this raises.
    """
    buffer = bytearray()
    size = n = 0
    async for piece in content:
        size += len(piece)
        if size > max_bytes:
            raise UploadTooLarge(max_bytes)
        if observe is not None:
            observe(piece)
        buffer += piece
        while len(buffer) >= CHUNK_BYTES:
            await chunks.put(key, n, bytes(buffer[:CHUNK_BYTES]))
            del buffer[:CHUNK_BYTES]
            n += 1
    if buffer:
        await chunks.put(key, n, bytes(buffer))
    return size


async def read_file(chunks: UploadChunks, key: str, size: int) -> AsyncGenerator[bytes, None]:
    """``key``'s stored file, chunk by chunk."""
    for n in range(-(-size // CHUNK_BYTES)):
        data = await chunks.get(key, n)
        if data is None:
            raise UploadIncomplete(key)
        yield data


async def discard(keys: UploadKeys, chunks: UploadChunks, key: str) -> None:
    """Forget ``key`` and its file."""
    await chunks.delete(key)
    await keys.delete(key)


class _FileField:
    """python-multipart callbacks keeping the bytes of the first part named ``file``."""

    def __init__(self) -> None:
        self.found = self.ended = False
        self.pending: list[bytes] = []
        self._in_file = False
        self._name = bytearray()
        self._value = bytearray()
        self._disposition = b""

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._name.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._in_file, self._disposition = False, b""

    def _header_end(self) -> None:
        if bytes(self._name).lower() == b"content-disposition":
            self._disposition = bytes(self._value)
        self._name.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._in_file = not self.found and options.get(b"name") == b"file"
        self.found = self.found or self._in_file

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.pending.append(data[start:end])

    def _end(self) -> None:
        self.ended = True


async def file_part(content_type: str | None, body: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The bytes of the form field ``file``, streamed out of a multipart body."""
    media, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if media != b"multipart/form-data" or not boundary:
        raise Invalid(
            "Send the CSV as multipart/form-data, in the field file.",
            details=[{"field": "file", "message": "multipart/form-data expected"}],
        )
    field = _FileField()
    parser = MultipartParser(boundary, field.callbacks())
    async for chunk in body:
        try:
            parser.write(chunk)
        except MultipartParseError as exc:
            raise Invalid("The multipart body is malformed.", dev_message=str(exc)) from exc
        pending, field.pending = field.pending, []
        for data in pending:
            yield data
    if not field.ended:
        raise Invalid("The multipart body is incomplete.")
    if not field.found:
        raise Invalid(
            "The form has no field named file.",
            details=[{"field": "file", "message": "field required"}],
        )


class _HeaderCheck:
    """A parser fed until the header record is complete: only the header's failures
    answer a direct upload; the rest of the file is the import's to judge."""

    def __init__(self, limits: CsvLimits) -> None:
        self._parser = AudienceParser((), limits)

    def feed(self, data: bytes) -> None:
        if self._parser.columns is not None:
            return
        try:
            self._parser.feed(data)
        except AudienceCsvFailed:
            if self._parser.columns is None:
                raise

    def close(self) -> None:
        if self._parser.columns is None:
            self._parser.close()  # raises, unless the file is a header without a line end


async def store_checked(
    keys: UploadKeys,
    chunks: UploadChunks,
    app_id: str,
    campaign_id: str,
    content: AsyncIterable[bytes],
    now: int,
    limits: CsvLimits,
) -> str:
    """Store a directly uploaded file under a key of its own (used already: no URL
    takes it), checking its header as it arrives (``AudienceCsvFailed``); the key."""
    key = new_id("upl_")
    await keys.insert(Upload(key, app_id, campaign_id, now, now, used=True))
    header = _HeaderCheck(limits)
    try:
        size = await store_file(chunks, key, content, limits.max_bytes, header.feed)
        header.close()
        await keys.stored(key, size)
    except Exception:
        await discard(keys, chunks, key)
        raise
    return key


async def receive_upload(  # the PUT of an upload URL
    keys: UploadKeys,
    chunks: UploadChunks,
    signer: UploadSigner,
    key: str,
    expires: str | None,
    signature: str | None,
    content: AsyncIterable[bytes],
    now: int,
    max_bytes: int = CSV_MAX_BYTES,
) -> Upload:
    """Store the file PUT to a signed URL, once. A PUT that fails before the file is
    stored whole (too large, the client gone) leaves the key unused, so the client may
    PUT again until the URL expires."""
    signer.check(key, expires, signature, now)
    upload = await keys.get(key)
    if upload is None or upload.expires_at < now or upload.in_object_store:
        raise UploadRefused("The upload URL is unknown or has expired.")
    if not await keys.claim(key):
        raise UploadUsed()
    try:
        size = await store_file(chunks, key, content, max_bytes)
        await keys.stored(key, size)
    except Exception:
        await chunks.delete(key)
        await keys.release(key)
        raise
    log.info(
        "campaign.csv_uploaded",
        app_id=upload.app_id,
        campaign_id=upload.campaign_id,
        key=key,
        size=size,
    )
    return replace(upload, used=True, size=size)
