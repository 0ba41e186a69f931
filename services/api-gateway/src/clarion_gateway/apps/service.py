"""Apps, API keys and authentication: the use cases and the repository they need."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cachetools import TTLCache

from clarion_shared.errors import Unauthorized
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger

from ..channels.service import ChannelSlots
from .domain import App, AppExists, check_api_key, check_app_id, hash_key, new_api_key, new_app_id

log = get_logger(__name__)


class AppLookup(Protocol):
    """Reading apps (the dashboard's list of an operator's apps)."""

    async def get(self, app_id: str) -> App | None: ...

    async def list_all(self) -> list[App]: ...


class AppRepository(AppLookup, ChannelSlots, Resource, Protocol):
    """Apps and their keys; the app's record also holds its channel slots."""

    async def insert(self, app: App, key_hash: str) -> bool:
        """Create the app and its key; False when the app id or the key is taken."""
        ...

    async def ensure(self, app: App, key_hash: str) -> None:
        """Create the app and bind the key to it if missing (idempotent)."""
        ...

    async def app_of_key(self, key_hash: str) -> str | None: ...


@dataclass(frozen=True)
class CreatedApp:
    app: App
    api_key: str


async def create_app(
    apps: AppRepository, name: str, app_id: str | None, api_key: str | None, now: int
) -> CreatedApp:
    """An app with the given ids, or generated ones (the key is returned this once)."""
    app_id = check_app_id(app_id) if app_id else new_app_id()
    api_key = check_api_key(api_key) if api_key else new_api_key()
    app = App(app_id=app_id, name=name, created_at=now)
    if not await apps.insert(app, hash_key(api_key)):
        raise AppExists(app_id)
    log.info("app.created", app_id=app_id)
    return CreatedApp(app, api_key)


async def ensure_dev_app(apps: AppRepository, app_id: str, api_key: str, now: int) -> None:
    """The dev app of ``make run``: created with its key when missing, else untouched."""
    await apps.ensure(App(app_id=app_id, name="Clarion dev app", created_at=now), hash_key(api_key))
    log.info("app.dev_app_ready", app_id=app_id)


class KeyResolver:
    """Resolves API keys to app ids: one ``_id`` lookup, then cached in process.

    Only hits are cached, each for ``ttl_s``: a new key works at once, a deleted key
    keeps working at most ``ttl_s`` on instances that saw it. A full cache drops its
    least recently used entry, never all of them: a burst of new keys must not send
    every request to the database at once.
    """

    def __init__(
        self,
        apps: AppRepository,
        ttl_s: float = 30.0,
        max_entries: int = 10_000,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._apps = apps
        self._cache: TTLCache[str, str] = TTLCache(max_entries, ttl_s, timer)

    async def app_of(self, api_key: str) -> str | None:
        key_hash = hash_key(api_key)
        app_id = self._cache.get(key_hash)
        if app_id is not None:
            return app_id
        app_id = await self._apps.app_of_key(key_hash)
        if app_id is not None:
            self._cache[key_hash] = app_id
        return app_id


async def authenticate(resolver: KeyResolver, api_key: str | None, app_id: str | None) -> str:
    """The app id of a ``/v3`` request: the key's app, which ``appid`` must match."""
    if not api_key:
        raise Unauthorized("The apikey header is missing.")
    owner = await resolver.app_of(api_key)
    if owner is None:
        raise Unauthorized("The apikey is not valid.")
    if app_id and app_id != owner:
        raise Unauthorized("The appid header does not match the apikey.")
    return owner


def check_admin(token: str | None, expected: str) -> None:
    if not token or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("Operator endpoints need Authorization: Bearer <admin token>.")
