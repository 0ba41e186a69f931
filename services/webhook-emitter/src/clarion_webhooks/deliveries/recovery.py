"""Nothing owed is lost when an emitter process dies: each process beats a heartbeat, and
every process looks for the dead ones. One live process adopts a dead one (a
``takeover:<owner>`` lock, taken by an insert): it queues the dead one's intakes (the
deliveries that have no record yet) and its pending deliveries at their time. Once the
dead one owns nothing, its heartbeat and lock are removed. If the adopter dies too, its
lock is released by whoever finds it dead, and the adoption starts again.

A process that stops cleanly ends its heartbeat, so its work is adopted at once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Protocol

from clarion_shared.lifecycle import Periodic, Resource
from clarion_shared.logging import get_logger

from .engine import Lanes
from .service import DeliveryRepository

log = get_logger(__name__)


class InstanceRegistry(Resource, Protocol):
    async def beat(self, owner: str, alive_until_ms: int) -> None: ...

    async def alive_until(self) -> dict[str, int]: ...

    async def forget(self, owner: str) -> None: ...

    async def lock(self, dead: str, by: str) -> bool: ...

    async def holder(self, dead: str) -> str | None: ...

    async def unlock(self, dead: str, by: str) -> None: ...


class Recovery(Periodic):
    """Heartbeat and adoption, as a Resource: each tick beats, then sweeps."""

    def __init__(
        self,
        instances: InstanceRegistry,
        deliveries: DeliveryRepository,
        lanes: Lanes,
        heartbeat_s: float,
        dead_after_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(heartbeat_s, "webhooks.recovery_failed")
        self._instances = instances
        self._deliveries = deliveries
        self._lanes = lanes
        self._dead_after_s = dead_after_s
        self._clock = clock
        self._adopted: set[str] = set()

    @property
    def owner(self) -> str:
        return self._lanes.owner

    async def start(self) -> None:
        await self._beat()  # alive before the first tick
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        with contextlib.suppress(Exception):
            await self._instances.beat(self.owner, 0)  # dead at once: adopt my work now

    async def _beat(self) -> None:
        alive_until = self._clock() + self._dead_after_s
        await self._instances.beat(self.owner, int(alive_until * 1000))

    async def tick(self) -> None:
        await self._beat()
        await self.sweep()

    async def sweep(self) -> None:
        """Adopt the dead processes that nobody alive has adopted."""
        now_ms = int(self._clock() * 1000)
        beats = await self._instances.alive_until()
        dead = {owner for owner, until in beats.items() if until < now_ms and owner != self.owner}
        for owner in sorted(dead):
            if owner in self._adopted:
                await self._finish(owner)
                continue
            if not await self._instances.lock(owner, self.owner):
                holder = await self._instances.holder(owner)
                if holder is not None and holder != self.owner and holder in dead:
                    await self._instances.unlock(owner, holder)  # its adopter died too
                continue
            await self._adopt(owner)

    async def _adopt(self, dead: str) -> None:
        self._adopted.add(dead)
        intakes = await self._deliveries.intakes_of(dead)
        for intake_id, items in intakes:
            missing = [d for d in items if not await self._deliveries.recorded(d.id)]
            await self._deliveries.move_intake(intake_id, self.owner)
            self._lanes.resume_intake(intake_id, missing)
        pending = await self._deliveries.pending_of(dead)
        for delivery in pending:
            self._lanes.schedule(delivery)
        log.warning(
            "webhooks.adopted",
            dead=dead,
            intakes=len(intakes),
            pending=len(pending),
        )

    async def _finish(self, dead: str) -> None:
        """Forget an adopted process once it owns nothing: its pending deliveries have
        all been attempted again (which makes this process their owner)."""
        if await self._deliveries.pending_of(dead) or await self._deliveries.intakes_of(dead):
            return
        await self._instances.forget(dead)
        self._adopted.discard(dead)
