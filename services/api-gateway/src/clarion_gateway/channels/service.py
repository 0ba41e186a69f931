"""Channels: the use cases and the ports they need.

A channel's provider settings are checked on every write (``provider_settings``):
whole when the channel is enabled, what it carries when it is not; ``allow_private`` is
``CLARION_WEBHOOKS_ALLOW_PRIVATE``. A custom channel gets its signing secret on create.

Every write is followed by the channel's full configuration (credentials included, the
topic is internal) on the compacted ``clarion.config.channels`` topic, which the
dispatcher reads. The database write comes first: a failed publish answers 503 and the
client's retry of the update publishes again.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from typing import Protocol

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from clarion_shared.contracts.config_channels import ChannelConfig
from clarion_shared.contracts.sends import CHANNEL_TYPES, ChannelType
from clarion_shared.cursor import CursorPage, CursorRequest, ListSorts, PageRequest
from clarion_shared.errors import Conflict
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger
from clarion_shared.webhook_signing import new_secret

from ..kafka import PublishFailed
from ..paging import PageOf, SortKey, matches_search, paginate
from ..slugs import GENERATED_ID_RETRIES, candidate_ids, check_slug, slugify
from .domain import (
    CHANNEL_TYPE_LIMITS,
    Channel,
    ChannelChanges,
    ChannelConfigNotPropagated,
    ChannelIdTaken,
    ChannelNotFound,
    NewChannel,
    channel_type_of,
    keep_masked_secrets,
)
from .provider_settings import check_settings, keep_signing_keys, with_signing_secret

log = get_logger(__name__)


class ChannelRepository(Resource, Protocol):
    async def insert(self, channel: Channel) -> bool:
        """False when the channel id is taken in the app."""
        ...

    async def get(self, app_id: str, channel_id: str) -> Channel | None: ...

    async def list_for_app(self, app_id: str) -> list[Channel]: ...

    async def of_type(self, app_id: str, channel_type: ChannelType) -> list[Channel]: ...

    async def replace(self, channel: Channel) -> None: ...


class ChannelSlots(Protocol):
    """The app's only channel of a limited type (push), reserved before it is created."""

    async def claim_channel_slot(self, app_id: str, channel_type: str, channel_id: str) -> bool:
        """Reserve the slot for ``channel_id``; False when another channel that still
        exists holds it."""
        ...

    async def release_channel_slot(
        self, app_id: str, channel_type: str, channel_id: str
    ) -> None: ...


class ConfigPublisher(Protocol):
    async def channel_config(self, config: ChannelConfig) -> None:
        """Publish a channel's configuration; raises ``PublishFailed``."""
        ...


@dataclass(frozen=True)
class ChannelQuery:
    search: str | None = None
    paging: PageRequest | CursorRequest = field(
        default_factory=lambda: PageRequest(1, 20, "createdAt", "asc")
    )


CHANNEL_SORTS = ListSorts(
    fields={
        "createdAt": "createdAt",
        "updatedAt": "updatedAt",
        "channelType": "channelType",
        "name": "name",
    },
    page_default=("createdAt", "asc"),
)
_SORT_KEYS: dict[str, SortKey[Channel]] = {
    "createdAt": SortKey(lambda c: c.created_at),
    "updatedAt": SortKey(lambda c: c.updated_at),
    "channelType": SortKey(lambda c: c.type),
    "name": SortKey(lambda c: c.name, fold=True),
}


async def create_channel(
    channels: ChannelRepository,
    slots: ChannelSlots,
    configs: ConfigPublisher,
    app_id: str,
    new: NewChannel,
    now: int,
    allow_private: bool,
) -> Channel:
    """The new channel; a custom one carries its signing secret in ``metadata``
    (``signingSecret``, the webhooks' format), for the create's answer to show once."""
    channel_type = channel_type_of(new.type)
    channel_id = (
        check_slug(new.channel_id, "channelId")
        if new.channel_id is not None
        else slugify(new.name) or f"{channel_type.replace('_', '-')}-{secrets.token_hex(3)}"
    )
    metadata = new.metadata or {}
    if channel_type == "custom":
        metadata = with_signing_secret(metadata, new_secret())
    check_settings(channel_type, metadata, enabled=new.enabled, allow_private=allow_private)
    channel = Channel(
        app_id=app_id,
        channel_id=channel_id,
        name=new.name,
        type=channel_type,
        enabled=new.enabled,
        metadata=metadata,
        created_at=now,
        updated_at=now,
    )
    # A generated id that collides gets a suffix; a chosen one is the client's conflict.
    retries = 0 if new.channel_id is not None else GENERATED_ID_RETRIES
    channel = await _insert(channels, slots, channel, retries)
    log.info("channel.created", app_id=app_id, channel_id=channel.channel_id, type=channel_type)
    await publish_config(configs, channel)
    return channel


async def _insert(
    channels: ChannelRepository, slots: ChannelSlots, channel: Channel, retries: int
) -> Channel:
    """Insert ``channel`` (holding its type's slot when the type is limited), under its
    id or, after a collision, a suffixed one; :class:`ChannelIdTaken` when none is free."""
    limited = channel.type in CHANNEL_TYPE_LIMITS
    ids = candidate_ids(channel.channel_id, "-")

    async def insert_next() -> Channel:
        candidate = replace(channel, channel_id=next(ids))
        first = candidate.channel_id == channel.channel_id
        if limited and not await slots.claim_channel_slot(
            channel.app_id, channel.type, candidate.channel_id
        ):
            raise Conflict(
                f"This app already has a {channel.type} channel.",
                details={"type": channel.type} if first else None,
            )
        if not await channels.insert(candidate):
            if limited:
                await slots.release_channel_slot(channel.app_id, channel.type, candidate.channel_id)
            raise ChannelIdTaken(candidate.channel_id)
        return candidate

    retrying = AsyncRetrying(
        stop=stop_after_attempt(1 + retries),
        retry=retry_if_exception_type(ChannelIdTaken),
        reraise=True,
    )
    return await retrying(insert_next)


async def get_channel(channels: ChannelRepository, app_id: str, channel_id: str) -> Channel:
    channel = await channels.get(app_id, channel_id)
    if channel is None:
        raise ChannelNotFound()
    return channel


async def list_channels(
    channels: ChannelRepository, app_id: str, query: ChannelQuery
) -> PageOf[Channel] | CursorPage[Channel]:
    # Channels per app are few: filter, sort and page in process (FerretDB would scan
    # for a regex anyway).
    found = [
        c
        for c in await channels.list_for_app(app_id)
        if matches_search(query.search, c.name, c.channel_id)
    ]
    return paginate(found, query.paging, _SORT_KEYS, lambda c: c.channel_id)


async def update_channel(
    channels: ChannelRepository,
    configs: ConfigPublisher,
    app_id: str,
    channel_id: str,
    changes: ChannelChanges,
    now: int,
    allow_private: bool,
) -> Channel:
    current = await get_channel(channels, app_id, channel_id)
    metadata = current.metadata
    if changes.metadata is not None:
        metadata = keep_masked_secrets(changes.metadata, current.metadata)
        if current.type == "custom":
            metadata = keep_signing_keys(metadata, current.metadata)
    updated = replace(
        current,
        name=changes.name if changes.name is not None else current.name,
        enabled=changes.enabled if changes.enabled is not None else current.enabled,
        metadata=metadata,
        updated_at=now,
    )
    check_settings(
        updated.type, updated.metadata, enabled=updated.enabled, allow_private=allow_private
    )
    await channels.replace(updated)
    log.info("channel.updated", app_id=app_id, channel_id=channel_id, enabled=updated.enabled)
    await publish_config(configs, updated)
    return updated


@dataclass(frozen=True)
class TypeAvailability:
    type: str
    available: bool
    limit: int | None  # channels of the type an app may have; None: no limit
    count: int  # channels of the type the app has


async def availability(channels: ChannelRepository, app_id: str) -> list[TypeAvailability]:
    counts: dict[str, int] = {}
    for channel in await channels.list_for_app(app_id):
        counts[channel.type] = counts.get(channel.type, 0) + 1
    out: list[TypeAvailability] = []
    for channel_type in CHANNEL_TYPES:
        limit = CHANNEL_TYPE_LIMITS.get(channel_type)
        count = counts.get(channel_type, 0)
        out.append(TypeAvailability(channel_type, limit is None or count < limit, limit, count))
    return out


async def publish_config(configs: ConfigPublisher, channel: Channel) -> None:
    config = ChannelConfig(
        app_id=channel.app_id,
        channel_id=channel.channel_id,
        name=channel.name,
        channel_type=channel.type,
        enabled=channel.enabled,
        metadata=channel.metadata,
        updated_at=channel.updated_at,
    )
    try:
        await configs.channel_config(config)
    except PublishFailed as exc:
        log.error(
            "channel.config_publish_failed",
            app_id=channel.app_id,
            channel_id=channel.channel_id,
            error=str(exc),
        )
        raise ChannelConfigNotPropagated(channel.channel_id) from exc
