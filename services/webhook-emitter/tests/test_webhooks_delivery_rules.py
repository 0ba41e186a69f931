"""What follows an attempt: success, a retry after the schedule's next delay (or the
endpoint's Retry-After), failure once the schedule is spent, 410; an operator's retry is
one attempt; the failing period that disables an endpoint restarts when it is edited."""

from __future__ import annotations

import pytest

from clarion_webhooks.app import Settings
from clarion_webhooks.deliveries.domain import (
    BadRetrySchedule,
    Delivery,
    after_attempt,
    failing_too_long,
    parse_retry_schedule,
    refused_without_attempt,
)
from clarion_webhooks.deliveries.sender import Outcome

SCHEDULE = (5.0, 300.0, 1800.0)


def outcome(code: int | None, retry_after: float | None = None) -> Outcome:
    return Outcome(
        status_code=code,
        error=None if code else "timeout",
        duration_ms=7,
        response=None,
        retry_after_s=retry_after,
    )


def fresh() -> Delivery:
    return Delivery(
        msg_id="msg_1", app_id="app", webhook_id="w1", trigger="t", body="{}", created_at=100
    )


def test_the_schedule_is_read_from_api_mds_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_retry_schedule("5, 300,1800") == SCHEDULE
    with pytest.raises(BadRetrySchedule):
        parse_retry_schedule("5,soon")
    with pytest.raises(BadRetrySchedule):
        parse_retry_schedule("-1")
    monkeypatch.setenv("CLARION_WEBHOOK_RETRY_SCHEDULE", "1,2")
    monkeypatch.setenv("CLARION_WEBHOOKS_ALLOW_PRIVATE", "true")
    settings = Settings()
    assert (settings.retry_schedule, settings.allow_private) == ("1,2", True)
    assert Settings.model_fields["retry_schedule"].default == "5,300,1800,7200,18000,36000,36000"


def test_a_success_ends_the_delivery() -> None:
    step = after_attempt(fresh(), outcome(204), 1000, SCHEDULE)
    assert (step.delivery.status, step.attempt_failed, step.gone) == ("succeeded", False, False)
    assert [a.status_code for a in step.delivery.attempts] == [204]


def test_failures_follow_the_schedule_until_it_is_spent() -> None:
    delivery, at, waits = fresh(), 1000, []
    for _ in range(len(SCHEDULE)):
        step = after_attempt(delivery, outcome(500), at, SCHEDULE)
        delivery = step.delivery
        assert delivery.status == "pending"
        assert step.attempt_failed
        assert delivery.next_attempt_at is not None
        waits.append(delivery.next_attempt_at - at)
        at = delivery.next_attempt_at
    assert waits == [5, 300, 1800]
    last = after_attempt(delivery, outcome(None), at, SCHEDULE).delivery
    assert (last.status, len(last.attempts), last.next_attempt_at) == ("failed", 4, None)
    assert last.attempts[-1].error == "timeout"


def test_retry_after_replaces_the_schedules_delay_within_its_longest() -> None:
    assert after_attempt(fresh(), outcome(429, 60), 1000, SCHEDULE).delivery.next_attempt_at == 1060
    capped = after_attempt(fresh(), outcome(429, 10**6), 1000, SCHEDULE).delivery
    assert capped.next_attempt_at == 1000 + 1800


def test_410_fails_the_delivery_and_marks_the_endpoint_gone() -> None:
    step = after_attempt(fresh(), outcome(410), 1000, SCHEDULE)
    assert (step.delivery.status, step.gone) == ("failed", True)


def test_an_operators_retry_is_one_attempt() -> None:
    manual = Delivery(**{**fresh().__dict__, "kind": "manual"})
    step = after_attempt(manual, outcome(500), 1000, SCHEDULE)
    assert step.delivery.status == "failed"
    assert step.delivery.attempts[-1].kind == "manual"
    assert step.delivery.kind == "schedule"


def test_a_delivery_to_a_disabled_endpoint_fails_without_a_call() -> None:
    refused = refused_without_attempt(fresh(), 1000, "endpoint disabled")
    assert refused.status == "failed"
    assert [(a.status_code, a.error) for a in refused.attempts] == [(None, "endpoint disabled")]


def test_the_failing_period_restarts_when_the_endpoint_is_edited() -> None:
    assert not failing_too_long(None, 0, 10_000, 100)
    assert failing_too_long(1_000, 0, 1_100, 100)
    assert not failing_too_long(1_000, 0, 1_099, 100)
    # Re-enabled at 1,050 s (config updated_at is in milliseconds).
    assert not failing_too_long(1_000, 1_050_000, 1_100, 100)
    assert failing_too_long(1_000, 1_050_000, 1_150, 100)
