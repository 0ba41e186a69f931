"""Pure rules of the delivery workers: what a job becomes, when to try again, what is
said about it.

Nothing here does I/O. A job is turned into the provider's ``Outbound``; the provider's
``Outcome`` into a stored ``DeliveryOutcome`` and a status event (``DeliverySent`` or
``DeliveryFailed``, with ids derived from the notification, so a redelivered job says
the same thing again), or into the job's next attempt on a retry topic.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.contracts.config_channels import ChannelConfig
from clarion_shared.contracts.jobs import DeliveryJob
from clarion_shared.contracts.status import DeliveryFailed, DeliverySent
from clarion_shared.contracts.users_events import PushTokensInvalid

from ..notifications.domain import event_id
from .models import DeliveryOutcome
from .providers.base import ERR_CHANNEL_CONFIG, ERR_PROVIDER_UNAVAILABLE, Outbound

ERR_RETRIES_EXHAUSTED = ERR_PROVIDER_UNAVAILABLE
StatusOut = DeliverySent | DeliveryFailed


def now_ms() -> int:
    """Milliseconds since the epoch: the unit of a job's ``not_before`` (event and
    outcome times are in seconds, the API's unit)."""
    return int(time.time() * 1000)


def config_key(app_id: str, channel_id: str) -> str:
    return f"{app_id}:{channel_id}"


def job_key(job: DeliveryJob) -> str:
    """The Kafka key of a job (and of its retries): one user's jobs stay in order."""
    return f"{job.app_id}:{job.uid}"


def outbound(job: DeliveryJob) -> Outbound:
    return Outbound(
        idempotency_key=job.job_id,
        app_id=job.app_id,
        send_id=job.send_id,
        uid=job.uid,
        channel_id=job.channel_id,
        content=job.content,
        contact=job.contact,
    )


def unusable_channel(job: DeliveryJob, config: ChannelConfig | None) -> ErrorInfo | None:
    """Why a job cannot go out on its channel as configured now, or None."""
    if config is None:
        return ErrorInfo(
            code=ERR_CHANNEL_CONFIG, message=f"The channel {job.channel_id} does not exist."
        )
    if config.channel_type != job.channel_type:
        return ErrorInfo(
            code=ERR_CHANNEL_CONFIG,
            message=f"The channel {job.channel_id} is a {config.channel_type} channel now.",
        )
    if not config.enabled:
        return ErrorInfo(
            code=ERR_CHANNEL_CONFIG, message=f"The channel {job.channel_id} is disabled."
        )
    return None


def rate_limit(config: ChannelConfig, default: float | None) -> float | None:
    """Messages per second the channel allows (its ``rateLimitPerSecond``), or None."""
    value = config.metadata.get("rateLimitPerSecond")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return default


# ---------------------------------------------------------------- outcomes


def outcome(
    job: DeliveryJob,
    *,
    at: int,
    error: ErrorInfo | None = None,
    provider_id: str | None = None,
    resent: bool = False,
) -> DeliveryOutcome:
    """The stored outcome of a job: sent, or failed with ``error``; ``resent`` when the
    message was sent again after a copy of the job died once the provider may have
    taken it (``service``)."""
    return DeliveryOutcome(
        job_id=job.job_id,
        app_id=job.app_id,
        send_id=job.send_id,
        chunk=job.chunk,
        uid=job.uid,
        channel_type=job.channel_type,
        channel_id=job.channel_id,
        status="sent" if error is None else "failed",
        error=error,
        provider_id=provider_id,
        attempts=job.attempt,
        resent=resent,
        at=at,
    )


def status_event(job: DeliveryJob, done: DeliveryOutcome) -> StatusOut:
    """What the status topic hears of a final outcome (a claim counts as sent)."""
    common = {
        "app_id": job.app_id,
        "send_id": job.send_id,
        "mode": job.mode,
        "occurred_at": done.at,
        "uid": job.uid,
        "channel_type": job.channel_type,
        "channel_id": job.channel_id,
        "notification_id": job.job_id,
        "template_id": job.template_id,
        "chunk": job.chunk,
    }
    if done.status == "failed":
        assert done.error is not None
        return DeliveryFailed(
            event_id=event_id(job.job_id, "delivery_failed"), error=done.error, **common
        )
    return DeliverySent(
        event_id=event_id(job.job_id, "delivery_sent"),
        provider_id=done.provider_id,
        attempts=done.attempts,
        **common,
    )


def tokens_invalid(job: DeliveryJob, tokens: Sequence[str], at: int) -> PushTokensInvalid | None:
    if not tokens:
        return None
    return PushTokensInvalid(
        app_id=job.app_id, uid=job.uid, tokens=list(dict.fromkeys(tokens)), occurred_at=at
    )


# ---------------------------------------------------------------- retries


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt ``n`` (n >= 1 failed) waits between half
    and all of ``base_s * 2**(n-1)`` (capped at ``cap_s``), and at least what the
    provider's ``Retry-After`` asked. After ``max_attempts`` calls the job fails."""

    max_attempts: int = 8
    base_s: float = 2.0
    cap_s: float = 600.0

    def delay(
        self, attempt: int, retry_after_s: float | None, rand: Callable[[], float] = random.random
    ) -> float:
        ceiling = min(self.cap_s, self.base_s * 2.0 ** (attempt - 1))
        jittered = ceiling / 2 + rand() * ceiling / 2
        return float(max(jittered, retry_after_s or 0.0))

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.max_attempts


def next_attempt(job: DeliveryJob, now_ms: int, delay_s: float) -> DeliveryJob:
    return job.model_copy(
        update={"attempt": job.attempt + 1, "not_before": now_ms + int(delay_s * 1000)}
    )


def deferred(job: DeliveryJob, due_ms: int) -> DeliveryJob:
    """The same attempt, later (the channel is throttled or its circuit is open)."""
    return job.model_copy(update={"not_before": due_ms})


def tier_for(delay_s: float, tiers: Sequence[int]) -> int:
    """The retry topic (by its delay, seconds) a job waiting ``delay_s`` goes to: the
    longest tier not longer than the wait (the first one for shorter waits)."""
    fitting = [tier for tier in tiers if tier <= delay_s]
    return max(fitting) if fitting else min(tiers)


def exhausted_error(code: str, message: str, attempts: int) -> ErrorInfo:
    return ErrorInfo(
        code=code or ERR_RETRIES_EXHAUSTED,
        message=f"Gave up after {attempts} attempts: {message}"[:500],
    )
