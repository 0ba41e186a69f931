"""Apps, API keys and authentication."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

from clarion_shared.errors import ApiError
from clarion_shared.logging import get_logger

from .. import domain
from ..models import AppCreate
from ..ports import AppRepository

log = get_logger(__name__)


@dataclass(frozen=True)
class CreatedApp:
    app: domain.App
    api_key: str


async def create_app(apps: AppRepository, body: AppCreate, now: int) -> CreatedApp:
    app_id = domain.check_app_id(body.app_id) if body.app_id else domain.new_app_id()
    api_key = domain.check_api_key(body.api_key) if body.api_key else domain.new_api_key()
    app = domain.App(app_id=app_id, name=body.name, created_at=now)
    if not await apps.insert(app, domain.hash_key(api_key)):
        raise domain.conflict(
            "An app with this appId or apiKey already exists.", details={"appId": app_id}
        )
    log.info("app.created", app_id=app_id)
    return CreatedApp(app, api_key)


async def ensure_dev_app(apps: AppRepository, app_id: str, api_key: str, now: int) -> None:
    """The dev app of ``make run``: created with its key when missing, else untouched."""
    await apps.ensure(
        domain.App(app_id=app_id, name="Clarion dev app", created_at=now), domain.hash_key(api_key)
    )
    log.info("app.dev_app_ready", app_id=app_id)


class KeyResolver:
    """Resolves API keys to app ids: one ``_id`` lookup, then cached in process.

    Only hits are cached, for ``ttl_s``: a new key works at once, a deleted key keeps
    working at most ``ttl_s`` on instances that saw it.
    """

    def __init__(self, apps: AppRepository, ttl_s: float = 30.0, max_entries: int = 10_000) -> None:
        self._apps = apps
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._cache: dict[str, tuple[str, float]] = {}

    async def app_of(self, api_key: str) -> str | None:
        key_hash = domain.hash_key(api_key)
        hit = self._cache.get(key_hash)
        clock = time.monotonic()
        if hit is not None and hit[1] > clock:
            return hit[0]
        app_id = await self._apps.app_of_key(key_hash)
        if app_id is not None:
            if len(self._cache) >= self._max_entries:
                self._cache.clear()
            self._cache[key_hash] = (app_id, clock + self._ttl_s)
        return app_id


def unauthorized(dev_message: str) -> ApiError:
    return ApiError(401, "ERR_UNAUTHORIZED", "Authentication failed.", dev_message=dev_message)


async def authenticate(resolver: KeyResolver, api_key: str | None, app_id: str | None) -> str:
    """The app id of a ``/v3`` request: the key's app, which ``appid`` must match."""
    if not api_key:
        raise unauthorized("The apikey header is missing.")
    owner = await resolver.app_of(api_key)
    if owner is None:
        raise unauthorized("The apikey is not valid.")
    if app_id and app_id != owner:
        raise unauthorized("The appid header does not match the apikey.")
    return owner


def check_admin(token: str | None, expected: str) -> None:
    if not token or not hmac.compare_digest(token.encode(), expected.encode()):
        raise unauthorized("Operator endpoints need Authorization: Bearer <admin token>.")
