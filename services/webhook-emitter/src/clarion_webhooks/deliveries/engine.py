"""The delivery lanes: every endpoint has a lane of its own, so one slow or dead endpoint
never delays the others.

- ``intake`` stores what a fetch of status events owes (one insert per up to 500
  deliveries) and queues each delivery on its endpoint's lane; the consumer commits the
  fetch as soon as it returns, without waiting for any endpoint.
- A lane runs up to ``per_endpoint`` attempts at a time, and all lanes together up to
  ``concurrency``: a hanging endpoint holds its own slots, never the others'.
- A delivery's first record is written after its first attempt, in bulk with its
  neighbours' (the common case, a success, costs that one insert); once every delivery of
  an intake has its record, the intake is removed. Later attempts update the record.
- A retry waits in a timer of this process, its record ``pending`` with this process as
  ``owner``; if the process dies, another adopts its intakes and pending deliveries
  (``recovery``). No consumer ever sleeps on a partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from clarion_shared.ids import new_id
from clarion_shared.lifecycle import cancel_and_wait
from clarion_shared.logging import get_logger

from ..endpoints.service import EndpointCache, EndpointHealth
from .domain import Delivery, after_attempt, failing_too_long, refused_without_attempt
from .service import DeliveryRepository, Disable, SenderPort

log = get_logger(__name__)

INTAKE_ITEMS = 500
IDLE_LANE_S = 30.0


@dataclass(frozen=True)
class LaneSettings:
    schedule: tuple[float, ...]
    disable_after_s: int
    concurrency: int = 256
    per_endpoint: int = 32
    flush_interval_s: float = 0.05
    flush_max: int = 1000


@dataclass
class _Lane:
    queue: asyncio.Queue[tuple[Delivery, str | None]] = field(default_factory=asyncio.Queue)
    workers: set[asyncio.Task[None]] = field(default_factory=set)


class Lanes:
    """The delivery runtime of one process (a Resource: ``start``/``stop``)."""

    def __init__(
        self,
        deliveries: DeliveryRepository,
        endpoints: EndpointCache,
        health: EndpointHealth,
        sender: SenderPort,
        settings: LaneSettings,
        owner: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._deliveries = deliveries
        self._endpoints = endpoints
        self._health = health
        self._sender = sender
        self._settings = settings
        self.owner = owner
        self._clock = clock
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._lanes: dict[str, _Lane] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._outstanding: dict[str, int] = {}  # intake id → deliveries without a record
        self._firsts: list[tuple[Delivery, str | None]] = []
        self._flushed = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self.disable: Disable | None = None  # set by the composition root

    async def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_forever(), name="webhooks.flush")

    async def stop(self) -> None:
        for handle in self._timers:
            handle.cancel()
        await cancel_and_wait(*(w for lane in self._lanes.values() for w in lane.workers))
        if self._flusher is not None:
            await cancel_and_wait(self._flusher)
        with contextlib.suppress(Exception):
            await self._flush()

    # ------------------------------------------------------------------ intake
    async def intake(self, deliveries: Sequence[Delivery]) -> None:
        """Store what is owed (before the caller commits its fetch), then queue it."""
        for start in range(0, len(deliveries), INTAKE_ITEMS):
            chunk = deliveries[start : start + INTAKE_ITEMS]
            intake_id = new_id("in_")
            await self._deliveries.add_intake(intake_id, self.owner, chunk)
            self.resume_intake(intake_id, chunk)

    def resume_intake(self, intake_id: str, deliveries: Sequence[Delivery]) -> None:
        """Queue an intake's deliveries (a new one, or one adopted from a dead process)."""
        self._outstanding[intake_id] = self._outstanding.get(intake_id, 0) + len(deliveries)
        for delivery in deliveries:
            self.enqueue(delivery, intake_id)
        if not deliveries:
            self._firsts.append((_NOTHING, intake_id))

    def enqueue(self, delivery: Delivery, intake_id: str | None = None) -> None:
        lane = self._lanes.get(delivery.endpoint_key)
        if lane is None:
            lane = self._lanes[delivery.endpoint_key] = _Lane()
        lane.queue.put_nowait((delivery, intake_id))
        if len(lane.workers) < min(self._settings.per_endpoint, lane.queue.qsize()):
            worker = asyncio.create_task(self._work(delivery.endpoint_key, lane))
            lane.workers.add(worker)

    def schedule(self, delivery: Delivery, delay_s: float | None = None) -> None:
        """Queue a pending delivery after ``delay_s``, or at its ``next_attempt_at``."""
        if delay_s is None:
            delay_s = (delivery.next_attempt_at or 0) - self._clock()
        delay = max(0.0, delay_s)
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            self.enqueue(delivery)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    def backlog(self) -> int:
        """Deliveries queued or waiting for a retry in this process."""
        return sum(lane.queue.qsize() for lane in self._lanes.values()) + len(self._timers)

    # ------------------------------------------------------------------ attempts
    async def _work(self, key: str, lane: _Lane) -> None:
        try:
            while True:
                try:
                    delivery, intake_id = lane.queue.get_nowait()
                except asyncio.QueueEmpty:
                    try:  # (wait_for costs a task: only when the lane is idle)
                        delivery, intake_id = await asyncio.wait_for(lane.queue.get(), IDLE_LANE_S)
                    except TimeoutError:
                        return
                async with self._slots:
                    try:
                        await self._attempt(delivery, intake_id)
                    except Exception:
                        # The delivery stays in its intake or pending record: adopted
                        # later, never lost.
                        log.exception("webhooks.attempt_crashed", delivery=delivery.id)
        finally:
            if (me := asyncio.current_task()) is not None:
                lane.workers.discard(me)
            if not lane.workers and lane.queue.empty() and self._lanes.get(key) is lane:
                del self._lanes[key]

    async def _attempt(self, delivery: Delivery, intake_id: str | None) -> None:
        now = int(self._clock())
        config = await self._endpoints.get(delivery.app_id, delivery.webhook_id)
        if config is None or not config.enabled:
            reason = "endpoint deleted" if config is None else "endpoint disabled"
            await self._record(refused_without_attempt(delivery, now, reason), intake_id)
            return
        outcome = await self._sender.send(
            config.url,
            delivery.msg_id,
            delivery.body.encode(),
            config.secrets(int(self._clock() * 1000)),
            (config.username or "", config.password or "") if config.use_basic_auth else None,
            now,
        )
        step = after_attempt(delivery, outcome, now, self._settings.schedule)
        await self._record(step.delivery, intake_id)
        if step.delivery.status == "pending":
            self.schedule(step.delivery, step.retry_in_s)
        since = await self._health.observe(config.key, step.attempt_failed, now)
        disable = self.disable
        if disable is None:
            return
        if step.gone:
            await disable(config, "gone", f"the endpoint answered 410 to {delivery.msg_id}")
        elif failing_too_long(since, config.updated_at, now, self._settings.disable_after_s):
            await disable(config, "failing", f"every attempt failed since {since}")

    async def _record(self, delivery: Delivery, intake_id: str | None) -> None:
        if len(delivery.attempts) == 1 and intake_id is not None:
            self._firsts.append((delivery, intake_id))
            if len(self._firsts) >= self._settings.flush_max:
                self._flushed.set()
            return
        await self._deliveries.save(delivery, self.owner)

    # ------------------------------------------------------------------ records
    async def _flush_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flushed.wait(), self._settings.flush_interval_s)
            self._flushed.clear()
            try:
                await self._flush()
            except Exception:
                log.exception("webhooks.flush_failed", waiting=len(self._firsts))
                await asyncio.sleep(1.0)

    async def _flush(self) -> None:
        if not self._firsts:
            return
        firsts, self._firsts = self._firsts, []
        try:
            await self._deliveries.record_first(
                [d for d, _ in firsts if d is not _NOTHING], self.owner
            )
        except Exception:
            self._firsts = firsts + self._firsts
            raise
        for _, intake_id in firsts:
            if intake_id is None:
                continue
            left = self._outstanding.get(intake_id, 0) - 1
            if left > 0:
                self._outstanding[intake_id] = left
                continue
            self._outstanding.pop(intake_id, None)
            await self._deliveries.drop_intake(intake_id)


_NOTHING = Delivery(msg_id="", app_id="", webhook_id="", trigger="", body="", created_at=0)

IntakeHandler = Callable[[Sequence[Delivery]], Awaitable[None]]
