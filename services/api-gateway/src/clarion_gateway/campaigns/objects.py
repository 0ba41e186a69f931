"""Where the files of upload keys are: the gateway's chunks (``uploads``), or an
S3-compatible object store when one is configured (``CLARION_GATEWAY_S3_*``).

With a store, ``upload-url`` answers the store's presigned URL: the client PUTs its file
there, not through the gateway; ``import-csv`` finds it (HEAD), each run of the import
streams it out (GET) and its end removes it (DELETE). The key stays bound to its app and
campaign by its ``Upload`` document in MongoDB (``in_object_store`` set), as the
gateway's own keys are. A presigned URL takes PUTs until it expires, so an imported
key's document stays, ``used``, until the sweep drops the expired keys with whatever
object a late PUT left. A direct upload (multipart) is kept in the chunks either way.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing, suppress
from dataclasses import dataclass
from typing import Protocol

from clarion_shared.errors import Unavailable
from clarion_shared.ids import new_id
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger

from .uploads import (
    NothingUploaded,
    Upload,
    UploadChunks,
    UploadKeys,
    UploadNotFound,
    UploadSigner,
    UploadTooLarge,
    UploadUrl,
    discard,
    read_file,
)

log = get_logger(__name__)


class ObjectStoreUnavailable(Unavailable):
    """The store did not answer, refused the gateway's own request, or is no longer
    configured for an upload made to it (503)."""

    def __init__(self, dev_message: str) -> None:
        super().__init__("The file store is unavailable; try again.", dev_message=dev_message)


class ObjectStore(Resource, Protocol):
    """The object store of the files PUT to presigned URLs (``objects_s3.S3Objects``)."""

    def key(self, app_id: str, campaign_id: str, upload_id: str) -> str:
        """The object key of an upload of ``campaign_id``."""
        ...

    def presign_put(self, key: str, ttl_s: int) -> str:
        """A URL taking PUTs of ``key``'s object for ``ttl_s`` from now, without other
        credentials (S3 knows no single use: each PUT replaces the object)."""
        ...

    async def size(self, key: str) -> int | None:
        """The object's bytes; None when there is no such object."""
        ...

    def read(self, key: str) -> AsyncGenerator[bytes, None]:
        """The object, streamed (``uploads.UploadIncomplete`` when it is gone)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; none is fine."""
        ...


@dataclass(frozen=True)
class UploadFiles:
    """The files of upload keys, wherever each is (``Upload.in_object_store``)."""

    keys: UploadKeys
    chunks: UploadChunks
    objects: ObjectStore | None

    def store(self) -> ObjectStore:
        if self.objects is None:
            raise ObjectStoreUnavailable("No object store is configured (CLARION_GATEWAY_S3_*).")
        return self.objects

    async def issue(
        self, signer: UploadSigner, app_id: str, campaign_id: str, now: int
    ) -> UploadUrl:
        """A new key and its URL: the store's presigned one, else the gateway's own."""
        key, expires, objects = new_id("upl_"), now + signer.ttl_s, self.objects
        if objects is None:
            await self.keys.insert(Upload(key, app_id, campaign_id, now, expires))
            return UploadUrl(signer.url(key, expires), key, expires)
        key = objects.key(app_id, campaign_id, key)
        await self.keys.insert(Upload(key, app_id, campaign_id, now, expires, in_object_store=True))
        return UploadUrl(objects.presign_put(key, signer.ttl_s), key, expires)

    async def size(self, upload: Upload, max_bytes: int) -> int:
        """The bytes of ``upload``'s file, to import: :class:`NothingUploaded` when
        there is none, :class:`UploadTooLarge` over ``max_bytes`` (a PUT to the store
        is not limited; the gateway's own PUT is)."""
        if not upload.in_object_store:
            if upload.size is None:
                raise NothingUploaded()
            return upload.size
        if upload.used:  # imported already: the key went with its import
            raise UploadNotFound()
        objects = self.store()
        size = await objects.size(upload.key)
        if size is None:
            raise NothingUploaded()
        if size > max_bytes:
            # A smaller file may be PUT until the URL expires; the sweep removes this one
            # if the store does not answer now.
            with suppress(ObjectStoreUnavailable):
                await objects.delete(upload.key)
            raise UploadTooLarge(max_bytes)
        return size

    async def feed(self, key: str, size: int, sink: Callable[[bytes], None]) -> None:
        """Pass ``key``'s file to ``sink`` piece by piece as it streams in (``size``: a
        file's in the chunks); what ``sink`` raises closes the stream and is raised."""
        upload = await self.keys.get(key)
        if upload is not None and upload.in_object_store:
            source = self.store().read(key)
        else:
            source = read_file(self.chunks, key, size)
        async with aclosing(source):
            async for data in source:
                sink(data)

    async def drop_imported(self, key: str) -> None:
        """Remove the file of an import that ended; a store's key stays for the sweep."""
        upload = await self.keys.get(key)
        if upload is None or not upload.in_object_store:
            await discard(self.keys, self.chunks, key)
            return
        await self.keys.claim(key)
        try:
            await self.store().delete(key)
        except ObjectStoreUnavailable as exc:  # the sweep removes it
            log.warning("campaign.upload_not_removed", key=key, error=exc.dev_message)

    async def drop(self, key: str) -> None:
        """Forget ``key`` and its file (an expired key's, or an imported one's); an
        object of a store no longer configured is left to the store's own rules."""
        upload = await self.keys.get(key)
        if upload is not None and upload.in_object_store and self.objects is not None:
            try:
                await self.objects.delete(key)
            except ObjectStoreUnavailable as exc:  # the next sweep tries again
                log.warning("campaign.upload_not_removed", key=key, error=exc.dev_message)
                return
        await discard(self.keys, self.chunks, key)
