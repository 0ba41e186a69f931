"""Deliveries: one webhook event owed to one endpoint, its attempts and what comes next.
Pure: no I/O.

A delivery's ``msg_id`` is the event's ``webhook-id`` (the same on every attempt); its
``_id`` adds the endpoint, so each endpoint's copy is stored once. After each attempt
:func:`after_attempt` says what follows: succeeded, another attempt at a time taken from
the retry schedule (or the endpoint's ``Retry-After``), failed for good, or failed and
the endpoint gone (410).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from clarion_shared.public.webhook_deliveries import DeliveryStatus

from .sender import Outcome

AttemptKind = Literal["schedule", "manual", "replay"]
DEFAULT_RETRY_SCHEDULE = "5,300,1800,7200,18000,36000,36000"


class BadRetrySchedule(ValueError):
    """Not comma-separated non-negative seconds."""


def parse_retry_schedule(text: str) -> tuple[float, ...]:
    """``"5,300,1800"`` → the delays before the 2nd, 3rd, 4th attempt (seconds)."""
    try:
        delays = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise BadRetrySchedule(f"retry schedule {text!r}: seconds, comma-separated") from exc
    if any(delay < 0 for delay in delays):
        raise BadRetrySchedule(f"retry schedule {text!r}: delays are not negative")
    return delays


def delivery_key(app_id: str, webhook_id: str, msg_id: str) -> str:
    return f"{app_id}:{webhook_id}:{msg_id}"


@dataclass(frozen=True)
class Attempt:
    at: int
    status_code: int | None
    error: str | None
    duration_ms: int
    response: str | None
    kind: AttemptKind = "schedule"


@dataclass(frozen=True)
class Delivery:
    """One event for one endpoint. ``body`` is the exact JSON signed and sent."""

    msg_id: str
    app_id: str
    webhook_id: str
    trigger: str
    body: str
    created_at: int
    status: DeliveryStatus = "pending"
    attempts: tuple[Attempt, ...] = ()
    next_attempt_at: int | None = None
    updated_at: int = 0
    # The next attempt's kind: a scheduled one, or an operator's retry or replay.
    kind: AttemptKind = "schedule"

    @property
    def id(self) -> str:
        return delivery_key(self.app_id, self.webhook_id, self.msg_id)

    @property
    def endpoint_key(self) -> str:
        return f"{self.app_id}:{self.webhook_id}"

    @property
    def scheduled_attempts(self) -> int:
        return sum(1 for attempt in self.attempts if attempt.kind == "schedule")


@dataclass(frozen=True)
class Step:
    """What an attempt decided: the delivery as it now stands, whether the attempt
    failed (the endpoint's health), and whether the endpoint answered 410 (it is to be
    disabled)."""

    delivery: Delivery
    attempt_failed: bool
    gone: bool = False
    retry_in_s: float | None = None  # pending: the exact wait before the next attempt


def attempt_of(outcome: Outcome, at: int, kind: AttemptKind) -> Attempt:
    return Attempt(
        at=at,
        status_code=outcome.status_code,
        error=outcome.error,
        duration_ms=outcome.duration_ms,
        response=outcome.response,
        kind=kind,
    )


def after_attempt(
    delivery: Delivery, outcome: Outcome, at: int, schedule: tuple[float, ...]
) -> Step:
    """The delivery after an attempt started at ``at`` ended with ``outcome``.

    A scheduled attempt that failed is tried again after the schedule's next delay (or
    the endpoint's ``Retry-After`` when it gave one, capped at the schedule's longest
    delay) until the schedule is spent; an operator's retry or replay is one attempt.
    A 410 ends the delivery and disables the endpoint.
    """
    attempts = (*delivery.attempts, attempt_of(outcome, at, delivery.kind))
    done = replace(delivery, attempts=attempts, updated_at=at, kind="schedule")
    if outcome.ok:
        return Step(replace(done, status="succeeded", next_attempt_at=None), False)
    if outcome.gone:
        return Step(replace(done, status="failed", next_attempt_at=None), True, gone=True)
    retries_used = done.scheduled_attempts - 1
    if delivery.kind != "schedule" or retries_used >= len(schedule):
        return Step(replace(done, status="failed", next_attempt_at=None), True)
    delay = schedule[retries_used]
    if outcome.retry_after_s is not None:
        delay = min(max(outcome.retry_after_s, 0.0), max(schedule))
    next_at = at + math.ceil(delay)
    return Step(replace(done, status="pending", next_attempt_at=next_at), True, retry_in_s=delay)


def refused_without_attempt(delivery: Delivery, at: int, reason: str) -> Delivery:
    """A delivery that will not be sent (its endpoint is disabled or deleted): failed,
    with the reason as its attempt's error, so a replay can send it later."""
    attempt = Attempt(at=at, status_code=None, error=reason, duration_ms=0, response=None)
    return replace(
        delivery,
        attempts=(*delivery.attempts, replace(attempt, kind=delivery.kind)),
        status="failed",
        next_attempt_at=None,
        updated_at=at,
        kind="schedule",
    )


def failing_too_long(
    failing_since: int | None, config_updated_at_ms: int, now: int, disable_after_s: int
) -> bool:
    """An endpoint is disabled when it has failed without a success for
    ``disable_after_s``, counted from its last configuration change at the latest (an
    operator who re-enables it starts the period again)."""
    if failing_since is None:
        return False
    start = max(failing_since, config_updated_at_ms // 1000)
    return now - start >= disable_after_s
