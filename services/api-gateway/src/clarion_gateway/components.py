"""What a running gateway is made of: built by ``app.build``, used by the routes."""

from __future__ import annotations

from dataclasses import dataclass

from .adapters.peers import Peers
from .ports import (
    AppRepository,
    ChannelRepository,
    Commands,
    IdempotencyRepository,
    Requester,
    TemplateRepository,
)
from .services.apps import KeyResolver
from .services.sends import SendSettings


@dataclass(frozen=True)
class Components:
    apps: AppRepository
    channels: ChannelRepository
    templates: TemplateRepository
    idempotency: IdempotencyRepository
    keys: KeyResolver
    commands: Commands
    requester: Requester
    peers: Peers
    admin_token: str
    send: SendSettings
    idempotency_ttl_s: int
    idempotency_lease_s: int
