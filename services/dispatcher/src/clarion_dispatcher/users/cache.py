"""The cache of user profiles of one dispatcher process. Pure: no I/O, the clock comes in.

The user-directory owns users; the dispatcher may not read its collection. So each
process keeps what the directory answered (a profile, or "no such user") and drops a
user as soon as the directory announces that it changed (``clarion.users.changes``,
applied by ``users.kafka``). A TTL bounds how long a copy lives when an announcement
was lost (the directory crashed between its write and its announcement).

**The race that matters**: a lookup reads the old profile, the user changes, its
invalidation is applied here, and only then does the lookup's answer arrive. Caching
that answer would keep the old profile until the TTL. So every invalidation bumps a
sequence and marks its users with it; a lookup notes the sequence when it begins
(``begin``), and its answer is kept only for the users not marked after that
(``put``). Marks are kept only while a lookup that began before them is in flight:
with no lookup in flight there are none, and a lookup ends (``end``) even when it
fails or times out, so they cannot pile up.

An invalidation applied *before* a lookup begins needs no mark: the directory
announces a change only after storing it, so a lookup that begins later reads it.

Bounded: at most ``size`` entries, the oldest evicted first. Entries are kept in the
order they were fetched, which with one TTL for all is the order in which they expire,
so expired entries are dropped from the front as they pass and memory follows the
users sent to within one TTL. (A least-recently-used order would keep a hot user past
the others, but the TTL refetches it anyway.)
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from clarion_shared.contracts.directory_replies import UserProfile

Key = tuple[str, str]  # (app id, uid)


@dataclass(frozen=True)
class Lookup:
    """A lookup in flight, as the cache saw it begin."""

    seq: int  # the invalidations applied before it began
    epoch: int  # the cache's generation: a reset forgets what older lookups fetched
    started: float  # when its answer was at the earliest read: its entries' TTL counts from here


@dataclass(frozen=True)
class _Entry:
    profile: UserProfile | None  # None: the directory has no such user
    expires_at: float


class UserCache:
    """Profiles (and absences) by app and uid. Closed until ``open``: while closed it
    answers nothing and keeps nothing (``begin`` returns None)."""

    def __init__(
        self, size: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.size = size
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._seq = 0
        self._epoch = 0
        self._open = False
        # Last invalidation of each key while lookups are in flight, in sequence order.
        self._marks: OrderedDict[Key, int] = OrderedDict()
        # The lookups in flight: how many began at each sequence.
        self._in_flight: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def enabled(self) -> bool:
        return self.size > 0 and self._open

    @property
    def marks(self) -> int:
        """Invalidation marks kept for the lookups in flight (none when none is)."""
        return len(self._marks)

    def open(self) -> None:
        """The changes are read from here on: lookups may be answered and kept."""
        self._reset()
        self._open = True

    def close(self) -> None:
        """The changes are no longer read: everything is forgotten, nothing is kept."""
        self._open = False
        self._reset()

    def clear(self) -> None:
        """Forget every entry (an announcement could not be read: any user may have
        changed). Lookups in flight keep nothing they fetched."""
        self._reset()

    def begin(self) -> Lookup | None:
        """Note a lookup that begins; None when the cache is off or closed. Every
        lookup begun must be ended (``end``), whatever happens to it."""
        if not self.enabled:
            return None
        lookup = Lookup(seq=self._seq, epoch=self._epoch, started=self._clock())
        self._in_flight[lookup.seq] = self._in_flight.get(lookup.seq, 0) + 1
        return lookup

    def end(self, lookup: Lookup) -> None:
        left = self._in_flight.get(lookup.seq, 0) - 1
        if left > 0:
            self._in_flight[lookup.seq] = left
        else:
            self._in_flight.pop(lookup.seq, None)
        self._prune_marks()

    def get(self, app_id: str, uids: Sequence[str]) -> tuple[dict[str, UserProfile], list[str]]:
        """What the cache knows: the profiles of the users it holds, and the uids it does
        not know (to ask the directory), each once. A uid held as absent is in neither."""
        now = self._clock()
        found: dict[str, UserProfile] = {}
        unknown: dict[str, None] = {}
        for uid in uids:
            key = (app_id, uid)
            entry = self._entries.get(key)
            if entry is None or entry.expires_at <= now:
                if entry is not None:
                    del self._entries[key]
                unknown[uid] = None
            elif entry.profile is not None:
                found[uid] = entry.profile
        return found, list(unknown)

    def put(
        self,
        lookup: Lookup,
        app_id: str,
        asked: Sequence[str],
        found: Mapping[str, UserProfile],
    ) -> int:
        """Keep the directory's answer to ``lookup``: the profile of each uid ``asked``
        that it ``found``, the others as absent, except the users invalidated since the
        lookup began. How many entries were kept."""
        if not self.enabled or lookup.epoch != self._epoch:
            return 0
        now = self._clock()
        expires_at = lookup.started + self._ttl_s
        if expires_at <= now:
            return 0
        kept = 0
        for uid in asked:
            key = (app_id, uid)
            mark = self._marks.get(key)
            if mark is not None and mark > lookup.seq:
                continue  # changed while the lookup was in flight: its answer may be old
            self._entries.pop(key, None)
            self._entries[key] = _Entry(found.get(uid), expires_at)
            kept += 1
        self._evict(now)
        return kept

    def invalidate(self, app_id: str, uids: Sequence[str]) -> None:
        """The directory changed these users: drop them, and mark them for the lookups
        in flight."""
        self._seq += 1
        for uid in uids:
            key = (app_id, uid)
            self._entries.pop(key, None)
            if self._in_flight:
                self._marks.pop(key, None)
                self._marks[key] = self._seq

    def _reset(self) -> None:
        self._entries.clear()
        self._marks.clear()
        self._epoch += 1

    def _evict(self, now: float) -> None:
        entries = self._entries
        while entries:
            key, entry = next(iter(entries.items()))
            if entry.expires_at > now and len(entries) <= self.size:
                break
            del entries[key]

    def _prune_marks(self) -> None:
        """Drop the marks no lookup in flight can be refused by: those not after the
        oldest one's beginning."""
        if not self._in_flight:
            self._marks.clear()
            return
        oldest = min(self._in_flight)
        marks = self._marks
        while marks:
            key, seq = next(iter(marks.items()))
            if seq > oldest:
                break
            del marks[key]
