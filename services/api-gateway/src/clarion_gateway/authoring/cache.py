"""The cache of templates and channels of one gateway process. Pure: no I/O, the clock
comes in.

A send reads its template and the channels it uses: two reads of the gateway's own
database on every request, the same few documents again and again. This cache keeps
them, per app, for the send path only (the authoring API always reads the database).

Coherence: every write of a template or a channel drops the app here at once
(``invalidate``) and is announced on ``clarion.authoring.changes``, so that every other
gateway process drops it too (``authoring.kafka``). A TTL bounds how long a copy lives
when an announcement was lost (the process crashed between its write and its
announcement, or the broker refused it).

**The race that matters**: a read of the old template is in flight, the template
changes, the change is applied here, and only then does the read answer. Keeping that
answer would serve the old template until the TTL. So every invalidation of an app
notes a sequence number; a read notes the sequence when it begins (``begin``), and its
answer is kept (``put``) only if the app has not been invalidated since.

Bounded: at most ``size`` entries, the oldest evicted first (one TTL for all: entries
expire in the order they were fetched).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

# (app id, what: "template" | "channel" | "channels_of_type", which)
Key = tuple[str, str, str]


@dataclass(frozen=True)
class Read:
    """A read of the database in flight, as the cache saw it begin."""

    app_id: str
    seq: int  # the invalidations applied before it began
    epoch: int  # the cache's generation: a reset forgets what older reads fetched
    started: float  # when its answer was at the earliest read: its TTL counts from here


@dataclass(frozen=True)
class _Entry(Generic[T]):
    value: T
    expires_at: float


class AuthoringCache:
    """Values by (app, kind, id). Closed until ``open``: while closed it answers nothing
    and keeps nothing (``begin`` returns None)."""

    def __init__(
        self, size: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.size = size
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[Key, _Entry[object]] = OrderedDict()
        self._keys_of_app: dict[str, set[Key]] = {}
        # The sequence of the last invalidation of each app, kept only while it can
        # refuse a read's answer (see ``_invalidated_since``).
        self._invalidated: dict[str, int] = {}
        self._seq = 0
        self._epoch = 0
        self._open = False

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def enabled(self) -> bool:
        return self.size > 0 and self._open

    def open(self) -> None:
        """The changes are read from here on: reads may be answered and kept."""
        self._reset()
        self._open = True

    def close(self) -> None:
        """The changes are no longer read: everything is forgotten, nothing is kept."""
        self._open = False
        self._reset()

    def clear(self) -> None:
        """Forget everything (an announcement could not be read: any app may have
        changed). Reads in flight keep nothing they fetched."""
        self._reset()

    def get(self, key: Key) -> tuple[bool, object]:
        """``(True, value)`` when the cache holds ``key``, ``(False, None)`` otherwise."""
        if not self.enabled:
            return False, None
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if entry.expires_at <= self._clock():
            self._drop(key)
            return False, None
        return True, entry.value

    def begin(self, app_id: str) -> Read | None:
        """Note a read of the database that begins; None when the cache is off."""
        if not self.enabled:
            return None
        return Read(app_id=app_id, seq=self._seq, epoch=self._epoch, started=self._clock())

    def put(self, read: Read, key: Key, value: object) -> bool:
        """Keep ``value``, what ``read`` fetched for ``key``, unless the app changed
        since the read began; whether it was kept."""
        if not self.enabled or read.epoch != self._epoch:
            return False
        if self._invalidated.get(read.app_id, 0) > read.seq:
            return False
        now = self._clock()
        expires_at = read.started + self._ttl_s
        if expires_at <= now:
            return False
        self._drop(key)
        self._entries[key] = _Entry(value, expires_at)
        self._keys_of_app.setdefault(key[0], set()).add(key)
        self._evict(now)
        return True

    def invalidate(self, app_id: str) -> None:
        """The app's templates or channels changed: drop them, and refuse the answers
        of the reads of that app in flight."""
        self._seq += 1
        self._invalidated[app_id] = self._seq
        for key in self._keys_of_app.pop(app_id, set()):
            self._entries.pop(key, None)
        if len(self._invalidated) > max(self.size, 1024):
            # Many apps changed: a reset bounds the marks (reads in flight keep nothing).
            self._reset()

    def _drop(self, key: Key) -> None:
        if self._entries.pop(key, None) is not None:
            keys = self._keys_of_app.get(key[0])
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._keys_of_app[key[0]]

    def _reset(self) -> None:
        self._entries.clear()
        self._keys_of_app.clear()
        self._invalidated.clear()
        self._epoch += 1

    def _evict(self, now: float) -> None:
        entries = self._entries
        while entries:
            key, entry = next(iter(entries.items()))
            if entry.expires_at > now and len(entries) <= self.size:
                break
            self._drop(key)
