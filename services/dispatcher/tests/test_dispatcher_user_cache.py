"""The user cache in front of the directory (``clarion_dispatcher.users``): realtime
lookups answered from it, misses asked of the directory and kept, invalidations from
``clarion.users.changes``, and the race between a lookup in flight and an
invalidation.

Unit: the cache around the fake directory, with a clock and a gate the test holds.
Integration: the cache's real reader of the topic, and the user-directory's real
publisher of it, on the real broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

import pytest
import pytest_asyncio

from clarion_devtools.helpers import wait_until
from clarion_directory.users.kafka import KafkaUserChanges
from clarion_dispatcher.fanout.service import DirectoryTimedOut
from clarion_dispatcher.testing import FakeDirectory
from clarion_dispatcher.users.cache import UserCache
from clarion_dispatcher.users.directory import CachingDirectory
from clarion_dispatcher.users.kafka import UserChangesTail
from clarion_shared import kafka
from clarion_shared.contracts.directory_replies import UserProfile
from clarion_shared.contracts.users_changes import UsersChanged
from clarion_shared.settings import InfraSettings
from clarion_shared.topics import Topics

APP = "app1"
TTL_S = 60.0


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class GatedDirectory(FakeDirectory):
    """``FakeDirectory`` whose answers wait for the test to open ``gate``; an answer
    is read from ``users`` when the lookup arrives, as the directory reads its
    collection before it replies."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.gate.set()

    async def resolve(
        self, app_id: str, uids: Sequence[str], *, realtime: bool = False
    ) -> Mapping[str, UserProfile]:
        answer = await super().resolve(app_id, uids, realtime=realtime)
        self.arrived.set()
        await self.gate.wait()
        return answer


def named(uid: str, name: str) -> UserProfile:
    return UserProfile(uid=uid, name=name)


@dataclass
class Setup:
    directory: CachingDirectory
    inner: GatedDirectory
    cache: UserCache
    clock: Clock

    async def names(self, *uids: str, realtime: bool = True) -> dict[str, str]:
        found = await self.directory.resolve(APP, list(uids), realtime=realtime)
        return {uid: profile.name for uid, profile in found.items()}

    def asked(self) -> list[list[str]]:
        """The uids each lookup asked of the directory, since the last call."""
        asked = list(self.inner.lookups)
        self.inner.lookups.clear()
        return asked


def setup(size: int = 100, opened: bool = True) -> Setup:
    clock = Clock()
    cache = UserCache(size, TTL_S, clock)
    if opened:
        cache.open()
    inner = GatedDirectory()
    inner.add(APP, named("alice", "Alice"), named("bob", "Bob"), named("cy", "Cy"))
    return Setup(CachingDirectory(inner, cache), inner, cache, clock)


async def test_a_miss_is_asked_and_kept_a_hit_is_not_asked() -> None:
    s = setup()
    assert await s.names("alice", "bob") == {"alice": "Alice", "bob": "Bob"}
    assert s.asked() == [["alice", "bob"]]
    assert await s.names("alice", "bob") == {"alice": "Alice", "bob": "Bob"}
    assert s.asked() == []
    # Only what the cache does not hold is asked; the answer is whole.
    assert await s.names("bob", "cy", "alice") == {"alice": "Alice", "bob": "Bob", "cy": "Cy"}
    assert s.asked() == [["cy"]]
    assert s.inner.realtime_lookups == [["alice", "bob"], ["cy"]]


async def test_an_unknown_uid_is_kept_as_absent_until_it_is_created() -> None:
    s = setup()
    assert await s.names("ghost", "alice") == {"alice": "Alice"}
    assert await s.names("ghost") == {}
    assert s.asked() == [["ghost", "alice"]]
    # The directory announces the create: the absence is forgotten.
    s.inner.add(APP, named("ghost", "Casper"))
    s.cache.invalidate(APP, ["ghost"])
    assert await s.names("ghost", "alice") == {"ghost": "Casper", "alice": "Alice"}
    assert s.asked() == [["ghost"]]


async def test_an_invalidated_user_is_asked_again() -> None:
    s = setup()
    await s.names("alice", "bob")
    s.asked()
    s.inner.add(APP, named("alice", "Alice King"))
    s.cache.invalidate(APP, ["alice"])
    s.cache.invalidate("other-app", ["bob"])  # another app's bob: not this one
    assert await s.names("alice", "bob") == {"alice": "Alice King", "bob": "Bob"}
    assert s.asked() == [["alice"]]
    # A deleted user is absent at once.
    del s.inner.users[APP]["bob"]
    s.cache.invalidate(APP, ["bob"])
    assert await s.names("alice", "bob") == {"alice": "Alice King"}


async def test_an_answer_read_before_an_invalidation_applied_while_in_flight_is_not_kept() -> None:
    """The directory reads the old profile; the user changes and its invalidation is
    applied here; then the old answer arrives. It answers this lookup (it was true
    when read) but is not kept; the user it did not touch is kept."""
    s = setup()
    s.inner.gate.clear()
    lookup = asyncio.create_task(s.names("alice", "bob"))
    await s.inner.arrived.wait()  # read: Alice, Bob
    s.inner.add(APP, named("alice", "Alice King"))
    s.cache.invalidate(APP, ["alice"])
    assert s.cache.marks == 1
    s.inner.gate.set()
    assert await lookup == {"alice": "Alice", "bob": "Bob"}
    assert s.cache.marks == 0  # nothing in flight: nothing kept for it
    s.asked()
    assert await s.names("alice", "bob") == {"alice": "Alice King", "bob": "Bob"}
    assert s.asked() == [["alice"]]


async def test_an_invalidation_applied_before_a_lookup_began_does_not_refuse_it() -> None:
    """The directory stores a change before announcing it, so a lookup that begins
    after the invalidation was applied reads the new profile: it is kept, even while
    an older lookup still holds marks."""
    s = setup()
    s.inner.gate.clear()
    older = asyncio.create_task(s.names("cy"))
    await s.inner.arrived.wait()
    s.inner.add(APP, named("alice", "Alice King"))
    s.cache.invalidate(APP, ["alice"])  # marked: ``older`` is in flight
    s.inner.gate.set()
    assert await s.names("alice") == {"alice": "Alice King"}
    await older
    s.asked()
    assert await s.names("alice", "cy") == {"alice": "Alice King", "cy": "Cy"}
    assert s.asked() == []


async def test_a_failed_lookup_leaves_no_marks_and_keeps_nothing() -> None:
    s = setup()
    s.inner.timeout = True
    s.cache.begin()  # another lookup in flight, so that invalidations are marked
    with pytest.raises(DirectoryTimedOut):
        await s.names("alice")
    s.cache.invalidate(APP, ["alice"])
    assert s.cache.marks == 1  # the one still in flight
    s.inner.timeout = False
    assert await s.names("alice") == {"alice": "Alice"}
    assert len(s.cache) == 1


async def test_the_cache_is_bounded_oldest_out_first() -> None:
    s = setup(size=2)
    await s.names("alice")
    await s.names("bob")
    await s.names("cy")  # alice goes
    assert len(s.cache) == 2
    s.asked()
    await s.names("bob", "cy")
    assert s.asked() == []
    await s.names("alice")
    assert s.asked() == [["alice"]]


async def test_an_entry_lives_one_ttl_from_the_lookup_that_fetched_it() -> None:
    s = setup()
    s.inner.gate.clear()
    lookup = asyncio.create_task(s.names("alice"))
    await s.inner.arrived.wait()
    s.clock.now += 10  # the answer takes 10 s to come: its TTL counts from the ask
    s.inner.gate.set()
    await lookup
    s.clock.now += TTL_S - 10 - 0.5
    s.asked()
    await s.names("alice")
    assert s.asked() == []
    s.clock.now += 0.5
    await s.names("alice")
    assert s.asked() == [["alice"]]
    # Expired entries are dropped as later ones are kept, not only when asked for.
    s.clock.now += TTL_S + 1
    await s.names("bob")
    assert len(s.cache) == 1


async def test_batch_lookups_go_to_the_directory_and_keep_nothing() -> None:
    s = setup()
    for _ in range(2):
        assert await s.names("alice", "bob", realtime=False) == {"alice": "Alice", "bob": "Bob"}
    assert s.asked() == [["alice", "bob"], ["alice", "bob"]]
    assert len(s.cache) == 0
    assert s.inner.realtime_lookups == []


async def test_before_the_changes_are_read_and_after_every_lookup_asks() -> None:
    s = setup(opened=False)
    await s.names("alice")
    await s.names("alice")
    assert s.asked() == [["alice"], ["alice"]]
    # Open: kept. Closed: forgotten, and what a lookup then in flight fetched is not kept.
    s.cache.open()
    await s.names("alice")
    assert len(s.cache) == 1
    s.inner.gate.clear()
    lookup = asyncio.create_task(s.names("cy"))
    await s.inner.arrived.wait()
    s.cache.close()
    s.inner.gate.set()
    await lookup
    assert len(s.cache) == 0
    s.asked()
    await s.names("alice")
    assert s.asked() == [["alice"]]
    # Closed and opened again while a lookup is in flight (the reader restarted: the
    # changes in between were not read): its answer is not kept either.
    s.cache.open()
    s.inner.arrived.clear()
    s.inner.gate.clear()
    lookup = asyncio.create_task(s.names("cy"))
    await s.inner.arrived.wait()
    s.cache.close()
    s.cache.open()
    s.inner.gate.set()
    await lookup
    assert len(s.cache) == 0


async def test_a_cache_of_size_zero_is_off() -> None:
    s = setup(size=0)
    await s.names("alice")
    await s.names("alice")
    assert s.asked() == [["alice"], ["alice"]]
    tail = UserChangesTail("127.0.0.1:1", "unused", s.cache)
    await tail.start()  # reads nothing (the address is not even dialled)
    assert await tail.ready()
    await tail.stop()


async def test_the_reader_applies_changes_and_forgets_all_on_an_unreadable_one() -> None:
    s = setup()
    tail = UserChangesTail("127.0.0.1:1", "unused", s.cache)  # not started: fed by hand
    await s.names("alice", "bob")
    s.inner.add(APP, named("alice", "Alice King"))
    tail.on_record(UsersChanged(app_id=APP, uids=["alice"], occurred_at=1).to_bytes())
    s.asked()
    assert await s.names("alice", "bob") == {"alice": "Alice King", "bob": "Bob"}
    assert s.asked() == [["alice"]]
    tail.on_record(b'{"type": "users_changed", "app_id": "app1"}')
    await s.names("alice", "bob")
    assert s.asked() == [["alice", "bob"]]


# ------------------------------------------------------------------ real broker


@pytest_asyncio.fixture(loop_scope="session")
async def real_setup(infra_settings: InfraSettings, topics: Topics) -> AsyncIterator[Setup]:
    """The cache with its real reader of ``clarion.users.changes``, started."""
    s = setup(opened=False)
    tail = UserChangesTail(infra_settings.kafka_bootstrap_servers, topics.users_changes, s.cache)
    await tail.start()
    try:
        assert await tail.ready()
        yield s
    finally:
        await tail.stop()


@pytest.mark.integration
async def test_a_change_the_directory_publishes_makes_the_next_lookup_miss(
    real_setup: Setup, infra_settings: InfraSettings, topics: Topics
) -> None:
    s = real_setup
    assert await s.names("alice", "ghost") == {"alice": "Alice"}
    assert await s.names("alice", "ghost") == {"alice": "Alice"}
    assert s.asked() == [["alice", "ghost"]]

    broker = kafka.make_broker(infra_settings, "user-directory-test")
    await broker.start()
    try:
        s.inner.add(APP, named("alice", "Alice King"), named("ghost", "Casper"))
        # The directory's own publisher, as it announces a write it stored.
        await KafkaUserChanges(broker, topics).users_changed(
            [UsersChanged(app_id=APP, uids=["alice", "ghost"], occurred_at=1)]
        )

        async def fresh() -> dict[str, str] | None:
            names = await s.names("alice", "ghost")
            return names if names == {"alice": "Alice King", "ghost": "Casper"} else None

        await wait_until(fresh, timeout_s=10, interval_s=0.01, what="the change applied")
    finally:
        await broker.stop()
    s.asked()
    assert await s.names("alice", "ghost") == {"alice": "Alice King", "ghost": "Casper"}
    assert s.asked() == []
