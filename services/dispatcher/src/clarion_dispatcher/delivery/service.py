"""Use cases of the delivery workers, and the ports they need.

``deliver`` handles one fetch of a channel type's jobs (from its jobs topic or one of
its retry topics), at least once per job and with nothing lost:

1. The outcomes already stored for the fetch's chunks are read (one query per chunk):
   a job with an outcome was delivered by an earlier copy, which may have died before
   saying so; its event is said again (same derived id) and the provider is not called.
2. Every other job goes to its channel's provider, concurrently: unless its channel is
   unusable (failed, ``ERR_CHANNEL_CONFIG``), its circuit is open or its rate limit
   would hold it longer than ``defer_after_s`` (both: the same attempt, later, on a
   retry topic, so this fetch does not wait for it).
3. Each answer's outcome is written as soon as it comes (group commit): sent, failed
   for good, or a retry: the next attempt goes to a retry topic after a backoff with
   jitter (at least the provider's Retry-After), until the policy gives up (failed,
   and the job dead-lettered with the reason).
4. Then the status events, the invalid push tokens, the retries and dead letters are
   published, and the consumer commits the fetch.

A worker killed anywhere re-reads the fetch: step 1 makes it say what was done and do
what was not. A provider call answered but not yet written (the group commit's
millisecond) is made again: no protocol lets a sender learn afterwards whether a
provider took a message, so the choice is between sending twice and losing, and a
lost notification is worse. Each copy carries the job's idempotency key (an email's
``Message-ID``, the custom channel's ``webhook-id``), so a receiver can drop it. For a
two-phase provider (email) the claim written just before the message's ending dot
tells the two cases apart: a job found without a claim was never taken (the server
drops an unfinished message), one found claimed may have been, and its outcome says
``resent`` (logged as ``delivery.resent_after_claim``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.contracts.jobs import DeliveryJob
from clarion_shared.contracts.users_events import PushTokensInvalid
from clarion_shared.ids import now as clock_now
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger

from . import domain
from .channels import Channel, Channels
from .commits import GroupCommit
from .domain import RetryPolicy, StatusOut
from .models import DeliveryOutcome
from .providers.base import (
    ERR_CHANNEL_CONFIG,
    Failed,
    Outcome,
    Retry,
    Sent,
    Superseded,
    TwoPhaseProvider,
)

log = get_logger(__name__)


class DeliveryLog(Resource, Protocol):
    """The ``deliveries`` collection: each delivery job's outcome, written once."""

    async def of_chunks(self, keys: Sequence[tuple[str, str, int]]) -> dict[str, DeliveryOutcome]:
        """The outcomes (and claims) stored for the jobs of those (app id, send id,
        chunk), by job id; a job's outcome wins over its claim."""
        ...

    async def of_jobs(self, app_id: str, job_ids: Sequence[str]) -> dict[str, DeliveryOutcome]:
        """The final outcomes of those jobs (the app's only; claims are not read), by
        job id: for reads that show a few notifications (a page of push notifications)."""
        ...

    async def claim(self, outcomes: Sequence[DeliveryOutcome]) -> set[str]:
        """Insert ``committing`` claims (one per job and attempt); the job ids whose
        claim for that attempt was already there (another copy of the job holds it)."""
        ...

    async def record(self, outcomes: Sequence[DeliveryOutcome]) -> None:
        """Insert final outcomes where absent (first write wins)."""
        ...


@dataclass
class Said:
    """What one fetch has to publish once its outcomes are written."""

    events: list[StatusOut] = field(default_factory=list)
    tokens: list[PushTokensInvalid] = field(default_factory=list)
    later: list[DeliveryJob] = field(default_factory=list)  # retries and deferrals
    dead: list[tuple[DeliveryJob, str]] = field(default_factory=list)


class DeliveryPublisher(Protocol):
    async def publish(self, said: Said, *, now_ms: int) -> None:
        """Status events (key: send id), token removals (key: app:uid), jobs to try
        later (each to its retry tier) and dead letters (with their reason)."""
        ...


@dataclass(frozen=True)
class Tuning:
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    defer_after_s: float = 1.0  # a rate-limit wait longer than this is deferred
    clock: Callable[[], float] = time.monotonic  # for rate limits and circuits


RealtimeDone = Callable[[Sequence[tuple[str, str]]], Awaitable[None]]
"""Told the realtime sends (app id, send id) a fetch finished deliveries of, so their
entries in the sends listing follow (``sends.service.refresh_realtime``)."""


class Worker:
    """The delivery use case of one process, over its ports."""

    def __init__(
        self,
        log_: DeliveryLog,
        channels: Channels,
        publisher: DeliveryPublisher,
        tuning: Tuning | None = None,
        realtime_done: RealtimeDone | None = None,
    ) -> None:
        self.deliveries = log_
        self.channels = channels
        self.publisher = publisher
        self.tuning = tuning or Tuning()
        self.realtime_done = realtime_done
        self._claims: GroupCommit[DeliveryOutcome, bool] = GroupCommit(self._claim)
        self._records: GroupCommit[DeliveryOutcome, None] = GroupCommit(self._record)

    async def _claim(self, outcomes: Sequence[DeliveryOutcome]) -> list[bool]:
        taken = await self.deliveries.claim(outcomes)
        return [outcome.job_id not in taken for outcome in outcomes]

    async def _record(self, outcomes: Sequence[DeliveryOutcome]) -> list[None]:
        await self.deliveries.record(outcomes)
        return [None] * len(outcomes)

    async def deliver(
        self, jobs: Sequence[DeliveryJob], not_due: Sequence[DeliveryJob] = ()
    ) -> Said:
        """One fetch of jobs (see the module); ``not_due`` go back to wait, as they are."""
        jobs = list({job.job_id: job for job in jobs}.values())  # one copy of each
        known = await self.deliveries.of_chunks(
            [(job.app_id, job.send_id, job.chunk) for job in jobs]
        )
        said = Said(later=list(not_due))
        todo: list[tuple[DeliveryJob, bool]] = []  # (job, sent again after a claim)
        for job in jobs:
            done = known.get(job.job_id)
            if done is None or done.status == "committing":
                again = done is not None and done.attempts == job.attempt
                todo.append((job, again))
            else:
                said.events.append(domain.status_event(job, done))
        await asyncio.gather(*(self._one(job, said, again) for job, again in todo))
        realtime = sorted({(e.app_id, e.send_id) for e in said.events if e.mode == "realtime"})
        if realtime and self.realtime_done is not None:
            await self.realtime_done(realtime)
        await self.publisher.publish(said, now_ms=domain.now_ms())
        return said

    async def _one(self, job: DeliveryJob, said: Said, again: bool = False) -> None:
        config = self.channels.configs.get(job.app_id, job.channel_id)
        problem = domain.unusable_channel(job, config)
        if problem is not None or config is None:
            await self._final(job, said, error=problem)
            return
        channel = self.channels.channel(config)
        if channel.provider is None:
            error = ErrorInfo(code=ERR_CHANNEL_CONFIG, message=channel.problem or "unusable")
            await self._final(job, said, error=error)
            return
        wait = self._admit(job, channel, said)
        if wait is None:
            return
        if wait > 0:
            await asyncio.sleep(wait)
        found = await self._call(job, channel, again)
        await self._answered(job, channel, found, said, again)

    def _admit(self, job: DeliveryJob, channel: Channel, said: Said) -> float | None:
        """How long to wait for the rate limit, or None when the job was deferred (the
        same attempt, due when its token comes or its circuit closes)."""
        now = self.tuning.clock()
        bucket = channel.bucket
        wait = bucket.take(now) if bucket is not None else 0.0
        if wait <= self.tuning.defer_after_s and channel.circuit.admits(now):
            return wait
        if bucket is not None:
            bucket.give_back()
        if wait <= self.tuning.defer_after_s:  # the circuit refused
            wait = channel.circuit.reopens_at(now) - now
        said.later.append(domain.deferred(job, domain.now_ms() + int(wait * 1000)))
        return None

    async def _call(self, job: DeliveryJob, channel: Channel, again: bool) -> Outcome | Superseded:
        """The provider's answer; in two phases (a claim before the commit) unless this
        attempt was claimed already by a copy that died (it may have been taken: sent
        again as it is, with its idempotency key)."""
        provider = channel.provider
        assert provider is not None
        outbound = domain.outbound(job)
        if again:
            log.warning("delivery.resent_after_claim", job_id=job.job_id, attempt=job.attempt)
        elif isinstance(provider, TwoPhaseProvider):
            claim = domain.outcome(job, at=clock_now())

            async def commit() -> bool:
                return await self._claims.submit(claim)

            return await provider.send_committed(outbound, commit)
        return await provider.send(outbound)

    async def _answered(
        self,
        job: DeliveryJob,
        channel: Channel,
        found: Outcome | Superseded,
        said: Said,
        again: bool = False,
    ) -> None:
        if isinstance(found, Superseded):
            return  # another copy of this attempt holds it and says what became of it
        if found.invalid_tokens:
            tokens = domain.tokens_invalid(job, found.invalid_tokens, clock_now())
            if tokens is not None:
                said.tokens.append(tokens)
        if isinstance(found, Sent):
            channel.circuit.succeeded()
            await self._final(job, said, provider_id=found.provider_id, resent=again)
        elif isinstance(found, Failed):
            channel.circuit.succeeded()  # the provider answered: it is up
            await self._final(job, said, error=ErrorInfo(code=found.code, message=found.message))
        else:
            self._retry(job, channel, found, said)
            if self.tuning.policy.exhausted(job.attempt):
                error = domain.exhausted_error(found.code, found.message, job.attempt)
                said.dead.append((job, error.message))
                await self._final(job, said, error=error)

    def _retry(self, job: DeliveryJob, channel: Channel, found: Retry, said: Said) -> None:
        if channel.circuit.failed(self.tuning.clock()):
            log.warning("delivery.circuit_open", channel=channel.config.key, code=found.code)
        log.info(
            "delivery.retry",
            job_id=job.job_id,
            channel=channel.config.key,
            attempt=job.attempt,
            code=found.code,
            message=found.message[:200],
        )
        if self.tuning.policy.exhausted(job.attempt):
            return
        delay = self.tuning.policy.delay(job.attempt, found.retry_after_s)
        said.later.append(domain.next_attempt(job, domain.now_ms(), delay))

    async def _final(
        self,
        job: DeliveryJob,
        said: Said,
        *,
        error: ErrorInfo | None = None,
        provider_id: str | None = None,
        resent: bool = False,
    ) -> None:
        done = domain.outcome(
            job, at=clock_now(), error=error, provider_id=provider_id, resent=resent
        )
        await self._records.submit(done)
        said.events.append(domain.status_event(job, done))
