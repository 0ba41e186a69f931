"""Consuming records the house way: parse, handle, retry, dead-letter.

Consumers in Clarion take the raw record (``bytes``), parse it here and call one use
case. A record that cannot be parsed, or whose processing keeps failing with an error
that is not transient, goes to ``<topic>.dlq`` with the reason; it never blocks the
partition. Transient errors (broker or database unreachable) are raised, so the record
is not committed and is delivered again. ``clarion_shared.kafka`` re-exports all of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from pydantic import TypeAdapter, ValidationError
from pymongo.errors import ConnectionFailure, OperationFailure
from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt, wait_exponential

from .logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    KafkaError,
    ConnectionFailure,
    TimeoutError,
    asyncio.TimeoutError,
)


async def dead_letter(
    broker: KafkaBroker,
    topic: str,
    body: bytes,
    key: bytes | None,
    reason: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Send a record that cannot be processed to ``<topic>.dlq`` with the reason."""
    dlq_headers = dict(headers or {})
    dlq_headers.update({"dlq-source-topic": topic, "dlq-reason": reason[:1000]})
    await broker.publish(body, f"{topic}.dlq", key=key, headers=dlq_headers)
    log.warning("kafka.dead_lettered", topic=topic, reason=reason[:200])


@dataclass(frozen=True)
class _Record(Generic[T]):
    value: T
    body: bytes
    key: bytes | None
    headers: dict[str, str]
    partition: int
    offset: int


@dataclass(frozen=True)
class Positioned(Generic[T]):
    """A parsed record and where it was read: what a transaction commits the offsets of
    (``offset + 1``), and what tells a redelivered record from a republished copy."""

    value: T
    topic: str
    partition: int
    offset: int


def _records(msg: StreamMessage[Any]) -> tuple[Any, ...]:
    raw = msg.raw_message
    return tuple(raw) if isinstance(raw, tuple | list) else (raw,)


async def _parse(
    broker: KafkaBroker, topic: str, record: Any, adapter: TypeAdapter[T]
) -> _Record[T] | None:
    """Parse one ConsumerRecord; dead-letter it (and return None) when it is invalid."""
    body: bytes = record.value or b""
    headers = {name: value.decode(errors="replace") for name, value in record.headers or ()}
    try:
        value = adapter.validate_json(body)
    except ValidationError as exc:
        await dead_letter(broker, topic, body, record.key, f"invalid message: {exc}", headers)
        return None
    return _Record(value, body, record.key, headers, record.partition, record.offset)


async def _run_with_policy(
    run: Callable[[], Awaitable[None]], topic: str, attempts: int
) -> str | None:
    """Run ``run`` with retries (0.2 s, then 0.8 s, ...): None when it succeeded, else
    why it never will.

    Transient errors are raised after the last attempt, so the records are redelivered.
    """

    def log_failure(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        if error is not None and not isinstance(error, (*TRANSIENT_ERRORS, OperationFailure)):
            log.error(
                "kafka.handler_failed",
                topic=topic,
                attempt=state.attempt_number,
                exc_info=error,
            )

    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.2, exp_base=4),
        after=log_failure,
        reraise=True,
    )

    async def attempt() -> None:
        # tenacity awaits only coroutine functions; ``run`` may be a lambda.
        await run()

    try:
        await retrying(attempt)
    except TRANSIENT_ERRORS:
        raise
    except OperationFailure as exc:
        return f"database error: {exc}"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def consume_record(
    broker: KafkaBroker,
    msg: StreamMessage[Any],
    topic: str,
    adapter: TypeAdapter[T],
    handle: Callable[[T], Awaitable[None]],
    attempts: int = 3,
) -> None:
    """Parse one record and run ``handle`` on it with the house error policy.

    - unparsable record: dead-lettered, committed;
    - transient error: retried in process, then raised so the record is redelivered;
    - any other error: retried, then dead-lettered with the reason.
    """

    async def handle_many(values: Sequence[T]) -> None:
        for value in values:
            await handle(value)

    await consume_batch(broker, msg, topic, adapter, handle_many, attempts)


async def consume_batch(
    broker: KafkaBroker,
    msg: StreamMessage[Any],
    topic: str,
    adapter: TypeAdapter[T],
    handle_many: Callable[[Sequence[T]], Awaitable[None]],
    attempts: int = 3,
) -> None:
    """Parse a batch of records and handle the valid ones together.

    The policy of ``consume_record`` applies to the batch; when the batch keeps failing
    with an error that is not transient, each record is tried on its own, so only the
    culprit is dead-lettered.
    """

    async def handle(records: Sequence[_Record[T]]) -> None:
        await handle_many([record.value for record in records])

    await _consume(broker, msg, topic, adapter, handle, attempts)


async def consume_positioned_batch(
    broker: KafkaBroker,
    msg: StreamMessage[Any],
    topic: str,
    adapter: TypeAdapter[T],
    handle_many: Callable[[Sequence[Positioned[T]]], Awaitable[None]],
    attempts: int = 3,
    *,
    wanted: Callable[[bytes], bool] | None = None,
) -> None:
    """``consume_batch``, each value with its partition and offset (in the order read),
    for a handler that commits offsets itself (a Kafka transaction): when the batch is
    isolated record by record, each call holds only records whose predecessors were
    handled or dead-lettered. Records whose body ``wanted`` refuses are neither parsed
    nor handled (they are committed with the rest).
    """

    async def handle(records: Sequence[_Record[T]]) -> None:
        await handle_many(
            [Positioned(record.value, topic, record.partition, record.offset) for record in records]
        )

    await _consume(broker, msg, topic, adapter, handle, attempts, wanted)


async def _consume(
    broker: KafkaBroker,
    msg: StreamMessage[Any],
    topic: str,
    adapter: TypeAdapter[T],
    handle: Callable[[Sequence[_Record[T]]], Awaitable[None]],
    attempts: int,
    wanted: Callable[[bytes], bool] | None = None,
) -> None:
    parsed = [
        record
        for raw in _records(msg)
        if wanted is None or wanted(raw.value or b"")
        if (record := await _parse(broker, topic, raw, adapter)) is not None
    ]
    if not parsed:
        return
    reason = await _run_with_policy(lambda: handle(parsed), topic, attempts)
    if reason is None:
        return
    if len(parsed) > 1:
        log.warning("kafka.batch_failed_isolating", topic=topic, records=len(parsed))
    for record in parsed:
        single = (
            reason
            if len(parsed) == 1
            else await _run_with_policy(partial(handle, [record]), topic, attempts)
        )
        if single is not None:
            await dead_letter(broker, topic, record.body, record.key, single, record.headers)
