"""The templates and channels of the send path, cached (``cache.AuthoringCache``), and
the repositories every other path uses, which announce each write.

``AnnouncingTemplates`` / ``AnnouncingChannels`` wrap the Mongo repositories: after a
write is stored they drop the app from this process's cache and announce the change to
the other processes (``Announcer``). ``CachedTemplates`` / ``CachedChannels`` are the
send path's reads, answered from the cache where it can.

A failed announcement does not fail the write (it is stored, and this process's cache
has dropped it): other processes serve the old copy until the TTL at most, and it is
logged.
"""

from __future__ import annotations

from typing import Protocol

from prometheus_client import Counter

from clarion_shared.contracts.sends import ChannelType
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger

from ..channels.domain import Channel
from ..channels.service import ChannelRepository
from ..kafka import PublishFailed
from ..templates.domain import Template
from ..templates.service import TemplateRepository
from .cache import AuthoringCache, Key

log = get_logger(__name__)

HITS = Counter(
    "clarion_authoring_cache_hits_total", "Template and channel reads of sends answered cached"
)
MISSES = Counter(
    "clarion_authoring_cache_misses_total", "Template and channel reads of sends from the database"
)


class Announcer(Resource, Protocol):
    """Tells every gateway process that an app's templates or channels changed, and
    keeps this process's cache coherent with what the others announce."""

    @property
    def cache(self) -> AuthoringCache: ...

    async def announce(self, app_id: str) -> None:
        """Publish the change; raises ``PublishFailed``."""
        ...

    async def ready(self) -> bool:
        """The changes are read (or the cache is off)."""
        ...


async def _changed(announcer: Announcer, app_id: str) -> None:
    announcer.cache.invalidate(app_id)
    try:
        await announcer.announce(app_id)
    except PublishFailed as exc:
        log.error("authoring.announce_failed", app_id=app_id, error=str(exc))


class AnnouncingTemplates:
    """``TemplateRepository`` whose writes are announced (see the module)."""

    def __init__(self, inner: TemplateRepository, announcer: Announcer) -> None:
        self._inner = inner
        self._announcer = announcer

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        await self._inner.stop()

    async def insert(self, template: Template) -> bool:
        inserted = await self._inner.insert(template)
        if inserted:
            await _changed(self._announcer, template.app_id)
        return inserted

    async def get(self, app_id: str, template_id: str) -> Template | None:
        return await self._inner.get(app_id, template_id)

    async def list_for_app(self, app_id: str) -> list[Template]:
        return await self._inner.list_for_app(app_id)

    async def replace(self, template: Template) -> bool:
        replaced = await self._inner.replace(template)
        if replaced:
            await _changed(self._announcer, template.app_id)
        return replaced


class AnnouncingChannels:
    """``ChannelRepository`` whose writes are announced (see the module)."""

    def __init__(self, inner: ChannelRepository, announcer: Announcer) -> None:
        self._inner = inner
        self._announcer = announcer

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        await self._inner.stop()

    async def insert(self, channel: Channel) -> bool:
        inserted = await self._inner.insert(channel)
        if inserted:
            await _changed(self._announcer, channel.app_id)
        return inserted

    async def get(self, app_id: str, channel_id: str) -> Channel | None:
        return await self._inner.get(app_id, channel_id)

    async def list_for_app(self, app_id: str) -> list[Channel]:
        return await self._inner.list_for_app(app_id)

    async def of_type(self, app_id: str, channel_type: ChannelType) -> list[Channel]:
        return await self._inner.of_type(app_id, channel_type)

    async def replace(self, channel: Channel) -> None:
        await self._inner.replace(channel)
        await _changed(self._announcer, channel.app_id)


class CachedTemplates:
    """The send path's template reads (``sends.service.TemplateSource``)."""

    def __init__(self, inner: TemplateRepository, cache: AuthoringCache) -> None:
        self._inner = inner
        self._cache = cache

    async def get(self, app_id: str, template_id: str) -> Template | None:
        key: Key = (app_id, "template", template_id)
        hit, value = self._cache.get(key)
        if hit:
            HITS.inc()
            return value if isinstance(value, Template) else None
        MISSES.inc()
        read = self._cache.begin(app_id)
        template = await self._inner.get(app_id, template_id)
        if read is not None:
            self._cache.put(read, key, template)
        return template


class CachedChannels:
    """The send path's channel reads (``sends.service.ChannelSource``)."""

    def __init__(self, inner: ChannelRepository, cache: AuthoringCache) -> None:
        self._inner = inner
        self._cache = cache

    async def get(self, app_id: str, channel_id: str) -> Channel | None:
        key: Key = (app_id, "channel", channel_id)
        hit, value = self._cache.get(key)
        if hit:
            HITS.inc()
            return value if isinstance(value, Channel) else None
        MISSES.inc()
        read = self._cache.begin(app_id)
        channel = await self._inner.get(app_id, channel_id)
        if read is not None:
            self._cache.put(read, key, channel)
        return channel

    async def of_type(self, app_id: str, channel_type: ChannelType) -> list[Channel]:
        key: Key = (app_id, "channels_of_type", channel_type)
        hit, value = self._cache.get(key)
        if hit and isinstance(value, tuple):
            HITS.inc()
            return [channel for channel in value if isinstance(channel, Channel)]
        MISSES.inc()
        read = self._cache.begin(app_id)
        channels = await self._inner.of_type(app_id, channel_type)
        if read is not None:
            self._cache.put(read, key, tuple(channels))
        return channels
