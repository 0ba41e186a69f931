"""Channels: the provider instances templates send through.

Every write is followed by the channel's full configuration (credentials included, the
topic is internal) on the compacted ``clarion.config.channels`` topic, which the
dispatcher reads. The database write comes first: a failed publish answers 503 and the
client's retry of the update publishes again.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from typing import Literal

from aiokafka.errors import KafkaError

from clarion_shared.contracts.config_channels import ChannelConfig
from clarion_shared.contracts.sends import CHANNEL_TYPES
from clarion_shared.errors import ApiError
from clarion_shared.logging import get_logger

from .. import domain
from ..models import ChannelCreate, ChannelUpdate
from ..ports import AppRepository, ChannelRepository, Commands

log = get_logger(__name__)


@dataclass(frozen=True)
class ChannelQuery:
    search: str | None = None
    sort: Literal["createdAt", "updatedAt", "channelType", "name"] = "createdAt"
    order: Literal["asc", "desc"] = "asc"
    page: domain.Page = field(default_factory=lambda: domain.Page(1, 20))


async def create_channel(
    channels: ChannelRepository,
    apps: AppRepository,
    commands: Commands,
    app_id: str,
    body: ChannelCreate,
    now: int,
) -> domain.Channel:
    channel_type = domain.channel_type_of(body.type)
    given = body.channel_id is not None
    channel_id = (
        domain.check_slug(body.channel_id, "channelId")
        if body.channel_id is not None
        else domain.slugify(body.name) or f"{channel_type.replace('_', '-')}-{secrets.token_hex(3)}"
    )
    limited = channel_type in domain.CHANNEL_TYPE_LIMITS
    if limited and not await apps.claim_channel_slot(app_id, channel_type, channel_id):
        raise domain.conflict(
            f"This app already has a {channel_type} channel.",
            details={"type": channel_type},
        )
    channel = domain.Channel(
        app_id=app_id,
        channel_id=channel_id,
        name=body.name,
        type=channel_type,
        enabled=body.enabled,
        metadata=body.metadata,
        created_at=now,
        updated_at=now,
    )
    inserted = await channels.insert(channel)
    # A generated id that collides gets a suffix; a chosen one is the client's conflict.
    attempts = 0
    while not inserted and not given and attempts < 5:
        attempts += 1
        fresh = f"{channel_id[:57]}-{secrets.token_hex(3)}"
        if limited:
            await apps.release_channel_slot(app_id, channel_type, channel.channel_id)
            if not await apps.claim_channel_slot(app_id, channel_type, fresh):
                raise domain.conflict(f"This app already has a {channel_type} channel.")
        channel = replace(channel, channel_id=fresh)
        inserted = await channels.insert(channel)
    if not inserted:
        if limited:
            await apps.release_channel_slot(app_id, channel_type, channel.channel_id)
        raise domain.conflict(
            f"A channel with channelId {channel.channel_id!r} already exists.",
            details={"channelId": channel.channel_id},
        )
    log.info("channel.created", app_id=app_id, channel_id=channel.channel_id, type=channel_type)
    await publish_config(commands, channel)
    return channel


async def get_channel(channels: ChannelRepository, app_id: str, channel_id: str) -> domain.Channel:
    channel = await channels.get(app_id, channel_id)
    if channel is None:
        raise domain.not_found("Channel")
    return channel


async def list_channels(
    channels: ChannelRepository, app_id: str, query: ChannelQuery
) -> domain.PageOf[domain.Channel]:
    # Channels per app are few: filter, sort and page in process (FerretDB would scan
    # for a regex anyway).
    found = [
        c
        for c in await channels.list_for_app(app_id)
        if domain.matches_search(query.search, c.name, c.channel_id)
    ]
    if query.sort == "updatedAt":
        found.sort(key=lambda c: (c.updated_at, c.channel_id))
    elif query.sort == "channelType":
        found.sort(key=lambda c: (c.type, c.channel_id))
    elif query.sort == "name":
        found.sort(key=lambda c: (c.name.casefold(), c.channel_id))
    else:
        found.sort(key=lambda c: (c.created_at, c.channel_id))
    if query.order == "desc":
        found.reverse()
    return domain.PageOf(query.page.slice(found), len(found), query.page)


async def update_channel(
    channels: ChannelRepository,
    commands: Commands,
    app_id: str,
    channel_id: str,
    body: ChannelUpdate,
    now: int,
) -> domain.Channel:
    current = await get_channel(channels, app_id, channel_id)
    updated = replace(
        current,
        name=body.name if body.name is not None else current.name,
        enabled=body.enabled if body.enabled is not None else current.enabled,
        metadata=(
            domain.keep_masked_secrets(body.metadata, current.metadata)
            if body.metadata is not None
            else current.metadata
        ),
        updated_at=now,
    )
    await channels.replace(updated)
    log.info("channel.updated", app_id=app_id, channel_id=channel_id, enabled=updated.enabled)
    await publish_config(commands, updated)
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
        limit = domain.CHANNEL_TYPE_LIMITS.get(channel_type)
        count = counts.get(channel_type, 0)
        out.append(TypeAvailability(channel_type, limit is None or count < limit, limit, count))
    out.extend(TypeAvailability(t, False, 0, 0) for t in domain.RESTRICTED_CHANNEL_TYPES)
    return out


async def publish_config(commands: Commands, channel: domain.Channel) -> None:
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
        await commands.channel_config(config)
    except (KafkaError, TimeoutError) as exc:
        log.error(
            "channel.config_publish_failed",
            app_id=channel.app_id,
            channel_id=channel.channel_id,
            error=repr(exc),
        )
        raise ApiError(
            503,
            "ERR_UNAVAILABLE",
            "The channel was saved but its configuration could not be propagated; "
            "send the update again.",
            details={"channelId": channel.channel_id},
        ) from exc
