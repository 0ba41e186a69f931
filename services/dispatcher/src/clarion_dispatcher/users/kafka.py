"""What keeps the user cache coherent: this instance's reader of
``clarion.users.changes``, from its end, with no consumer group (every instance holds a
cache of its own, so every instance reads every change)."""

from __future__ import annotations

from prometheus_client import Counter
from pydantic import ValidationError

from clarion_shared.contracts.users_changes import UsersChanged
from clarion_shared.logging import get_logger
from clarion_shared.tail import FETCH_MAX_WAIT_MS, TopicTail

from .cache import UserCache

log = get_logger(__name__)

INVALIDATIONS = Counter(
    "clarion_user_cache_invalidations_total", "Uids the user-directory announced as changed"
)


class UserChangesTail:
    """Applies every ``UsersChanged`` to ``cache``. The cache answers nothing until the
    reader is positioned at the end of the topic (``start``): from then on every change
    is applied, and the cache holds nothing older. ``stop`` closes the cache again.
    With a cache of size 0 (off) nothing is read."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        cache: UserCache,
        fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS,
    ) -> None:
        self._cache = cache
        self._tail = TopicTail(bootstrap_servers, topic, self.on_record, fetch_max_wait_ms)

    async def start(self) -> None:
        if self._cache.size == 0:
            return
        await self._tail.start()
        self._cache.open()

    async def stop(self) -> None:
        self._cache.close()
        await self._tail.stop()

    async def ready(self) -> bool:
        """The /readyz check: the changes are read (or the cache is off)."""
        return self._cache.size == 0 or self._tail.ready

    def on_record(self, value: bytes) -> None:
        try:
            change = UsersChanged.model_validate_json(value)
        except ValidationError as exc:
            # Whichever users it named may have changed: forget them all.
            log.warning("users.change_unreadable", size=len(value), error=str(exc)[:200])
            self._cache.clear()
            return
        INVALIDATIONS.inc(len(change.uids))
        self._cache.invalidate(change.app_id, change.uids)
