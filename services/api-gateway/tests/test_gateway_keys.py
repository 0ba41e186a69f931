"""API keys to apps: the in-process cache of ``KeyResolver``."""

from __future__ import annotations

from clarion_gateway.apps.domain import App, hash_key
from clarion_gateway.apps.service import KeyResolver
from clarion_gateway.testing import MemoryApps


class CountingApps(MemoryApps):
    def __init__(self) -> None:
        super().__init__()
        self.lookups: list[str] = []

    async def app_of_key(self, key_hash: str) -> str | None:
        self.lookups.append(key_hash)
        return await super().app_of_key(key_hash)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _apps_with_keys(*keys: str) -> CountingApps:
    apps = CountingApps()
    for key in keys:
        assert await apps.insert(App(f"app-{key}", key, 1), hash_key(key))
    return apps


async def test_hits_are_cached_and_misses_are_not() -> None:
    apps = await _apps_with_keys("k1")
    resolver = KeyResolver(apps, ttl_s=30, timer=Clock())
    assert await resolver.app_of("k1") == "app-k1"
    assert await resolver.app_of("k1") == "app-k1"
    assert len(apps.lookups) == 1
    assert await resolver.app_of("new") is None
    # A key created after a miss works at once.
    assert await apps.insert(App("app-new", "new", 1), hash_key("new"))
    assert await resolver.app_of("new") == "app-new"
    assert len(apps.lookups) == 3


async def test_a_full_cache_drops_one_entry_not_all() -> None:
    apps = await _apps_with_keys("k1", "k2", "k3", "k4")
    resolver = KeyResolver(apps, ttl_s=30, max_entries=3, timer=Clock())
    for key in ("k1", "k2", "k3", "k4"):
        await resolver.app_of(key)
    assert len(apps.lookups) == 4
    # k4 took the place of the least recently used entry (k1); the others stay cached.
    for key in ("k2", "k3", "k4"):
        assert await resolver.app_of(key) == f"app-{key}"
    assert len(apps.lookups) == 4
    assert await resolver.app_of("k1") == "app-k1"
    assert apps.lookups[-1] == hash_key("k1")


async def test_entries_expire_one_by_one() -> None:
    apps = await _apps_with_keys("k1", "k2")
    clock = Clock()
    resolver = KeyResolver(apps, ttl_s=30, timer=clock)
    await resolver.app_of("k1")
    clock.now = 10
    await resolver.app_of("k2")
    clock.now = 31  # k1 cached at 0 has expired, k2 cached at 10 has not
    await resolver.app_of("k1")
    await resolver.app_of("k2")
    assert apps.lookups == [hash_key("k1"), hash_key("k2"), hash_key("k1")]
    clock.now = 41
    await resolver.app_of("k2")
    assert apps.lookups[-1] == hash_key("k2")
    assert len(apps.lookups) == 4
