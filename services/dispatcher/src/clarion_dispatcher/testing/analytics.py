"""In-memory analytics rollups and marks (the port of ``analytics.service``), run
through the same repository suite as ``MongoAnalytics``. ``crash_after`` makes the
next ``mark`` or ``apply`` do its work and then fail, as a process killed right after
it would."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from ..analytics.domain import DAY, RollupDelta
from ..analytics.mongo import KEEP_BATCHES
from ..analytics.query import Row
from ..analytics.service import Mark

Step = Literal["mark", "apply"]


class Crashed(Exception):
    """The stand-in process died right after a step."""


class _Rollup:
    def __init__(self, delta: RollupDelta) -> None:
        self.delta = delta
        self.counts = delta.counts.model_copy(update={m: 0 for m in delta.counts.nonzero()})
        self.batches: list[str] = []


class InMemoryAnalytics:
    def __init__(self) -> None:
        self.marks: dict[str, Mark] = {}
        self.pending: dict[str, int] = {}  # batch: when it was marked
        self.rollups: dict[str, _Rollup] = {}
        self.crash_after: Step | None = None
        self.apply_calls = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def _maybe_crash(self, step: Step) -> None:
        if self.crash_after == step:
            self.crash_after = None
            raise Crashed(step)

    async def mark(self, marks: Sequence[Mark]) -> set[str]:
        new = {m.event_id for m in marks if m.event_id not in self.marks}
        for mark in marks:
            at = min(mark.marked_at, self.pending.get(mark.batch, mark.marked_at))
            self.pending[mark.batch] = at
        for mark in marks:
            self.marks.setdefault(mark.event_id, mark)
        self._maybe_crash("mark")
        return new

    async def unapplied(self) -> list[Mark]:
        return [mark for mark in self.marks.values() if mark.batch in self.pending]

    async def apply(self, batch: str, deltas: Sequence[RollupDelta]) -> None:
        self.apply_calls += 1
        for delta in deltas:
            rollup = self.rollups.setdefault(delta.rollup_id, _Rollup(delta))
            if batch in rollup.batches:
                continue
            rollup.counts = rollup.counts + delta.counts
            rollup.batches = [*rollup.batches, batch][-KEEP_BATCHES:]
        self._maybe_crash("apply")

    async def confirm(self, batch: str) -> None:
        self.pending.pop(batch, None)

    async def series_rows(self, keys: Sequence[str], first: int, last: int) -> list[Row]:
        return self._rows(lambda d: d.span_key in keys, first, last)

    async def ranking_rows(self, keys: Sequence[str], first: int, last: int) -> list[Row]:
        return self._rows(lambda d: d.ranking_key in keys, first, last)

    def _rows(self, wanted: Callable[[RollupDelta], bool], first: int, last: int) -> list[Row]:
        return [
            Row(r.delta.series.dimension_id, r.delta.bucket, r.counts, r.delta.label)
            for r in self.rollups.values()
            if wanted(r.delta) and first <= r.delta.bucket <= last
        ]

    async def forget_marks(self, before: int) -> int:
        cutoff = before // DAY
        old = [
            event_id
            for event_id, mark in self.marks.items()
            if mark.batch not in self.pending and mark.marked_at // DAY < cutoff
        ]
        for event_id in old:
            del self.marks[event_id]
        marked = {mark.batch for mark in self.marks.values()}
        for batch, at in list(self.pending.items()):
            if batch not in marked and at // DAY < cutoff:
                del self.pending[batch]
        return len(old)
