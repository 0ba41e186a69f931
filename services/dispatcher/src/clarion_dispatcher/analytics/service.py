"""Use cases of analytics: count a fetch of status events exactly once, finish what a
crash left half done, answer a report.

Exactly once without transactions, in three bulk steps per fetch (``count``):

1. **Mark.** The apply (``batch``, derived from the fetch's event ids) noted pending,
   then one mark per new event, ``_id`` its ``event_id`` (derived: a republished or
   replayed event repeats it), inserted all at once; each holds the event's facts and
   its batch. The events whose mark was already there were counted before (or are
   being): they are dropped.
2. **Apply.** The new events' facts summed per rollup document, and one conditional
   ``$inc`` per document that only moves if the document has not seen this batch yet
   (it keeps the ids of the last batches it took). Repeating it changes nothing.
3. **Confirm.** The batch no longer pending (one write, whatever its size).

A crash between 1 and 3 leaves a batch pending: the redelivered fetch finds its marks
(its events are all duplicates then) and applies their batches again before going on
(``recover``), and the sweep does the same for anything older than a grace period.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from clarion_shared.contracts.status import AnyStatusEvent
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger
from clarion_shared.public.analytics import (
    AnalyticsPublic,
    AnalyticsQuery,
    AnalyticsTopEntry,
    DimensionParam,
)

from . import query as rules
from .domain import (
    DAY,
    Fact,
    RollupDelta,
    batch_id,
    facts_of,
    ranking_key,
    rollup_deltas,
    spans,
)
from .query import Row, Scope, Window

log = get_logger(__name__)


class Mark(BaseModel):
    """That an event is counted, or being counted while its ``batch`` is pending."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    batch: str
    marked_at: int
    facts: list[Fact]


class AnalyticsRepository(Resource, Protocol):
    """The ``analytics_rollups`` and ``analytics_marks`` collections."""

    async def mark(self, marks: Sequence[Mark]) -> set[str]:
        """Note the marks' batches pending, then insert the marks whose event has none;
        return the event ids inserted."""
        ...

    async def unapplied(self) -> list[Mark]:
        """The marks of the pending batches (few: a crash's, or an apply under way)."""
        ...

    async def apply(self, batch: str, deltas: Sequence[RollupDelta]) -> None:
        """Add each delta to its rollup unless that rollup took ``batch`` already."""
        ...

    async def confirm(self, batch: str) -> None:
        """The batch is applied: no longer pending."""
        ...

    async def series_rows(self, keys: Sequence[str], first: int, last: int) -> list[Row]:
        """The rollups of the span keys ``keys`` with a bucket in ``[first, last]``."""
        ...

    async def ranking_rows(self, keys: Sequence[str], first: int, last: int) -> list[Row]:
        """The day rollups of the ranking keys ``keys`` with a bucket in ``[first, last]``."""
        ...

    async def forget_marks(self, before: int) -> int:
        """Remove the marks made before ``before`` (Unix seconds) but a pending batch's,
        and the pending batches of that time without a mark; how many marks."""
        ...


async def count(events: Sequence[AnyStatusEvent], *, repo: AnalyticsRepository, now: int) -> int:
    """Count a fetch of status events, each once whatever was counted before; returns
    how many events were new."""
    facts = {event.event_id: facts_of(event) for event in events}
    counted = [event_id for event_id, found in facts.items() if found]
    if not counted:
        return 0
    batch = batch_id(counted)
    marks = [
        Mark(event_id=event_id, batch=batch, marked_at=now, facts=facts[event_id])
        for event_id in counted
    ]
    new = await repo.mark(marks)
    if len(new) < len(counted):
        await recover(repo, seen=set(counted) - new)
    if new:
        await _apply(repo, batch, [m for m in marks if m.event_id in new])
    else:  # every event was marked by earlier batches (now applied): nothing pends here
        await repo.confirm(batch)
    return len(new)


async def _apply(repo: AnalyticsRepository, batch: str, marks: Iterable[Mark]) -> None:
    await repo.apply(batch, rollup_deltas(f for mark in marks for f in mark.facts))
    await repo.confirm(batch)


async def recover(
    repo: AnalyticsRepository, *, seen: set[str] | None = None, before: int | None = None
) -> int:
    """Apply again the batches whose marks are not applied: those holding one of the
    events ``seen``, or (the sweep) those marked before ``before``. Returns how many."""
    pending: dict[str, list[Mark]] = {}
    for mark in await repo.unapplied():
        pending.setdefault(mark.batch, []).append(mark)
    redo = [
        batch
        for batch, marks in pending.items()
        if (seen is not None and any(m.event_id in seen for m in marks))
        or (before is not None and all(m.marked_at < before for m in marks))
    ]
    for batch in redo:
        log.info("analytics.batch_recovered", batch=batch, events=len(pending[batch]))
        await _apply(repo, batch, pending[batch])
    return len(redo)


async def sweep(repo: AnalyticsRepository, *, now: int, grace_s: int, keep_days: int) -> int:
    """Finish the batches a crash left (marked over ``grace_s`` ago), and forget the
    marks older than ``keep_days`` (a status event is not replayed that late: the
    topic keeps a week)."""
    recovered = await recover(repo, before=now - grace_s)
    await repo.forget_marks(now - keep_days * DAY)
    return recovered


async def report(
    app_id: str,
    scope: Scope,
    query: AnalyticsQuery,
    *,
    repo: AnalyticsRepository,
    now: int,
    resource_id: str = "",
) -> AnalyticsPublic:
    """The answer of one analytics operation, from the rollups alone. An id nothing was
    counted for (another app's, or unknown) answers zeros: campaigns and templates are
    the gateway's, and the dispatcher cannot tell them apart."""
    frame = rules.window(query, now)
    chosen = rules.selection(scope, query, resource_id)
    series = rules.series_of(app_id, chosen, frame)
    first, last = frame.stored_range()
    keys = [series.span_key(span) for span in spans(first, last, frame.stored)]
    rows_call = repo.series_rows(keys, first, last)
    if chosen.top is None:
        return rules.answer(frame, await rows_call)
    rows, top = await asyncio.gather(rows_call, _top(app_id, chosen.top, frame, query.limit, repo))
    return rules.answer(frame, rows, top)


async def _top(
    app_id: str, dimension: DimensionParam, frame: Window, limit: int, repo: AnalyticsRepository
) -> list[AnalyticsTopEntry]:
    first, last = frame.day_range()
    keys = [ranking_key(app_id, dimension, year) for year in spans(first, last, "day")]
    rows = await repo.ranking_rows(keys, first, last)
    return rules.ranked(dimension, rows, limit)
