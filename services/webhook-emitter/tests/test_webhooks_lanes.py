"""The delivery lanes with a scripted sender: a record per delivery written once, retries
on the schedule, one endpoint's trouble never holding another's deliveries, 410 and a
long failure disabling the endpoint (and saying so), and a dead process's work adopted."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from clarion_shared.contracts.config_webhooks import WebhookConfig
from clarion_shared.contracts.webhook_state import DisableReason
from clarion_webhooks.deliveries.domain import Delivery
from clarion_webhooks.deliveries.engine import Lanes, LaneSettings
from clarion_webhooks.deliveries.recovery import Recovery
from clarion_webhooks.deliveries.sender import Outcome
from clarion_webhooks.deliveries.service import deliveries_for, disable_endpoint
from clarion_webhooks.endpoints.service import EndpointCache, EndpointHealth
from clarion_webhooks.events.domain import WebhookEvent
from clarion_webhooks.testing import (
    InMemoryDeliveries,
    InMemoryEndpointRepository,
    InMemoryInstances,
    StatesSeen,
)

APP = "app-1"
Script = Callable[[str, int], Outcome]


def answer(code: int, retry_after: float | None = None) -> Outcome:
    return Outcome(
        status_code=code, error=None, duration_ms=1, response="", retry_after_s=retry_after
    )


class ScriptedSender:
    """Answers each call as ``script(url, n)`` says (``n``: that URL's call number), after
    ``delays[url]`` seconds; keeps every call."""

    def __init__(self, script: Script, delays: dict[str, float] | None = None) -> None:
        self.script = script
        self.delays = delays or {}
        self.calls: list[tuple[str, str, float]] = []

    async def send(
        self,
        url: str,
        msg_id: str,
        body: bytes,
        secrets: Sequence[str],
        basic_auth: tuple[str, str] | None,
        now_s: int,
    ) -> Outcome:
        n = sum(1 for u, _, _ in self.calls if u == url)
        self.calls.append((url, msg_id, time.monotonic()))
        if url in self.delays:
            await asyncio.sleep(self.delays[url])
        return self.script(url, n)


def config(webhook_id: str, triggers: Sequence[str] = ("after_feed_item_sent",)) -> WebhookConfig:
    return WebhookConfig(
        app_id=APP,
        webhook_id=webhook_id,
        name=webhook_id,
        url=f"http://127.0.0.1:9/{webhook_id}",
        triggers=list(triggers),
        enabled=True,
        signing_secret="whsec_dGVzdHNlY3JldHRlc3RzZWNyZXQ=",
        updated_at=1_000,
    )


def event(n: int, trigger: str = "after_feed_item_sent") -> WebhookEvent:
    return WebhookEvent(
        event_id=f"msg_{n}",
        app_id=APP,
        send_id="bat_1",
        trigger=trigger,
        occurred_at=1_700_000_000,
        data={"id": f"item-{n}"},
    )


class World:
    def __init__(self, sender: ScriptedSender, *configs: WebhookConfig, **settings: Any) -> None:
        self.endpoints = InMemoryEndpointRepository()
        for c in configs:
            self.endpoints.endpoints[c.key] = c
        self.deliveries = InMemoryDeliveries()
        self.instances = InMemoryInstances()
        self.states = StatesSeen()
        self.sender = sender
        self.cache = EndpointCache(self.endpoints, ttl_s=0)
        self.settings = LaneSettings(
            schedule=settings.get("schedule", (1.0, 1.0)),
            disable_after_s=settings.get("disable_after_s", 3600),
            flush_interval_s=0.01,
        )

    def lanes(self, owner: str = "p1") -> Lanes:
        lanes = Lanes(
            self.deliveries,
            self.cache,
            EndpointHealth(self.endpoints),
            self.sender,
            self.settings,
            owner,
        )

        async def disable(c: WebhookConfig, reason: DisableReason, detail: str) -> None:
            await disable_endpoint(
                self.endpoints, self.cache, self.states, lanes, c, reason, detail, int(time.time())
            )

        lanes.disable = disable
        return lanes

    async def owed(self, *events: WebhookEvent) -> list[Delivery]:
        return await deliveries_for(self.cache, events)

    def statuses(self) -> dict[str, str]:
        return {key: d.status for key, (d, _) in self.deliveries.records.items()}

    async def until(self, done: Callable[[], bool], within_s: float = 10.0) -> None:
        deadline = time.monotonic() + within_s
        while not done():
            assert time.monotonic() < deadline, "not done in time"
            await asyncio.sleep(0.01)


async def test_each_delivery_is_recorded_once_and_its_intake_removed() -> None:
    world = World(ScriptedSender(lambda url, n: answer(200)), config("w1"), config("w2"))
    lanes = world.lanes()
    await lanes.start()
    try:
        await lanes.intake(await world.owed(*[event(n) for n in range(1200)]))
        assert len(world.deliveries.intakes) == 5  # 2,400 deliveries, 500 per intake
        await world.until(lambda: len(world.deliveries.records) == 2400)
        await world.until(lambda: not world.deliveries.intakes)
    finally:
        await lanes.stop()
    assert set(world.statuses().values()) == {"succeeded"}
    assert len(world.sender.calls) == 2400
    # Written in bulk: far fewer writes than deliveries.
    assert world.deliveries.writes < 200


async def test_a_failing_endpoint_is_retried_on_the_schedule_with_the_same_id() -> None:
    world = World(
        ScriptedSender(lambda url, n: answer(500 if n < 2 else 204)), config("w1"), schedule=(1, 1)
    )
    lanes = world.lanes()
    await lanes.start()
    try:
        await lanes.intake(await world.owed(event(1)))
        await world.until(lambda: world.statuses() == {f"{APP}:w1:msg_1": "succeeded"})
    finally:
        await lanes.stop()
    assert [msg for _, msg, _ in world.sender.calls] == ["msg_1"] * 3
    times = [at for _, _, at in world.sender.calls]
    assert all(later - earlier >= 0.5 for earlier, later in itertools.pairwise(times))
    (record, _) = world.deliveries.records[f"{APP}:w1:msg_1"]
    assert [a.status_code for a in record.attempts] == [500, 500, 204]


async def test_a_spent_schedule_fails_the_delivery() -> None:
    world = World(ScriptedSender(lambda url, n: answer(503)), config("w1"), schedule=(0, 0))
    lanes = world.lanes()
    await lanes.start()
    try:
        await lanes.intake(await world.owed(event(1)))
        await world.until(lambda: world.statuses() == {f"{APP}:w1:msg_1": "failed"})
    finally:
        await lanes.stop()
    assert len(world.sender.calls) == 3


async def test_a_hanging_endpoint_does_not_delay_another() -> None:
    slow, fast = config("slow"), config("fast")
    sender = ScriptedSender(lambda url, n: answer(200), delays={slow.url: 5.0})
    world = World(sender, slow, fast)
    lanes = world.lanes()
    await lanes.start()
    started = time.monotonic()
    try:
        await lanes.intake(await world.owed(*[event(n) for n in range(300)]))
        await world.until(
            lambda: sum(1 for k, s in world.statuses().items() if ":fast:" in k) == 300, 4.0
        )
    finally:
        await lanes.stop()
    assert time.monotonic() - started < 4.0
    slow_calls = [c for c in sender.calls if c[0] == slow.url]
    assert len(slow_calls) == world.settings.per_endpoint  # its own slots, no more


async def test_410_disables_the_endpoint_and_tells_the_gateway_and_the_others() -> None:
    gone = config("gone")
    watcher = config("watcher", triggers=["after_webhook_disabled"])
    world = World(
        ScriptedSender(lambda url, n: answer(410 if "gone" in url else 200)), gone, watcher
    )
    lanes = world.lanes()
    await lanes.start()
    try:
        await lanes.intake(await world.owed(event(1), event(2)))
        await world.until(lambda: any(":watcher:" in k for k in world.deliveries.records))
        await world.until(lambda: len(world.statuses()) == 3)
    finally:
        await lanes.stop()
    assert world.endpoints.endpoints[gone.key].enabled is False
    [disabled] = world.states.disabled
    assert (disabled.webhook_id, disabled.reason, disabled.config_updated_at) == (
        "gone",
        "gone",
        1_000,
    )
    statuses = world.statuses()
    assert statuses[f"{APP}:gone:msg_1"] == "failed"
    # The second event found the endpoint disabled: failed without a call, replayable.
    assert statuses[f"{APP}:gone:msg_2"] == "failed"
    assert sum(1 for url, _, _ in world.sender.calls if "gone" in url) == 1
    [(announced, _)] = [v for k, v in world.deliveries.records.items() if ":watcher:" in k]
    assert announced.trigger == "after_webhook_disabled"
    assert '"webhookId":"gone"' in announced.body


async def test_an_endpoint_failing_too_long_is_disabled() -> None:
    world = World(
        ScriptedSender(lambda url, n: answer(500)),
        config("w1"),
        schedule=(1, 1, 1),
        disable_after_s=1,
    )
    lanes = world.lanes()
    await lanes.start()
    try:
        await lanes.intake(await world.owed(event(1)))
        await world.until(lambda: bool(world.states.disabled), 6.0)
    finally:
        await lanes.stop()
    assert world.states.disabled[0].reason == "failing"
    assert world.endpoints.endpoints[config("w1").key].enabled is False


async def test_a_dead_process_is_adopted_and_nothing_it_owed_is_lost() -> None:
    world = World(ScriptedSender(lambda url, n: answer(200)), config("w1"))
    owed = await world.owed(*[event(n) for n in range(10)])
    # Process p0 stored an intake, recorded 3 deliveries (one pending a retry), then died.
    await world.deliveries.add_intake("in_dead", "p0", owed[:6])
    await world.deliveries.record_first([replace(d, status="succeeded") for d in owed[:2]], "p0")
    pending = owed[6]
    await world.deliveries.save(replace(pending, next_attempt_at=int(time.time())), "p0")
    await world.instances.beat("p0", 0)
    lanes = world.lanes("p1")
    recovery = Recovery(world.instances, world.deliveries, lanes, heartbeat_s=0.05, dead_after_s=1)
    await lanes.start()
    await recovery.start()
    try:
        await world.until(lambda: not world.deliveries.intakes)
        await world.until(lambda: "p0" not in world.instances.beats)
    finally:
        await recovery.stop()
        await lanes.stop()
    sent = sorted(msg for _, msg, _ in world.sender.calls)
    # Deliveries already recorded are not sent again; the others are sent once.
    assert sent == sorted([d.msg_id for d in owed[2:6]] + [pending.msg_id])
    assert world.instances.beats["p1"] == 0  # a clean stop hands its work over at once
