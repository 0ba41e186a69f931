"""Per channel configuration, in each worker process: a token bucket (the channel's
``rateLimitPerSecond``) and a circuit that pauses a provider that keeps failing.

Both are pure state machines over a monotonic clock (seconds), so they are tested
without waiting. Several worker processes each hold their own bucket: a channel's rate
limit is per process (say so when scaling out; README, Scaling out).
"""

from __future__ import annotations

from dataclasses import dataclass


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` held; ``take`` reserves one and
    answers how long to wait before using it (0 when one was there)."""

    def __init__(self, rate: float, now: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self.burst
        self._at = now

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now

    def take(self, now: float) -> float:
        """Reserve a token (the bucket may go negative: later takers wait longer)."""
        self._refill(now)
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def give_back(self) -> None:
        """Undo a ``take`` whose job was deferred instead of waiting."""
        self._tokens = min(self.burst, self._tokens + 1)


@dataclass
class Circuit:
    """Closed until ``threshold`` transient failures in a row; then open for
    ``cooldown_s`` (doubling on each reopening, at most ``max_cooldown_s``), when one
    probe goes through (half-open): its success closes it, its failure opens it again."""

    threshold: int = 10
    cooldown_s: float = 15.0
    max_cooldown_s: float = 300.0
    failures: int = 0
    open_until: float = 0.0
    opened: int = 0
    probing: bool = False

    def admits(self, now: float) -> bool:
        """Whether a call may go now (taking the probe's place when half-open)."""
        if self.failures < self.threshold:
            return True
        if now < self.open_until or self.probing:
            return False
        self.probing = True
        return True

    def reopens_at(self, now: float) -> float:
        """When a job refused now should come back."""
        return max(self.open_until, now + 1.0)

    def succeeded(self) -> None:
        self.failures = 0
        self.opened = 0
        self.probing = False

    def failed(self, now: float) -> bool:
        """Count a transient failure; whether the circuit opened because of it. Calls
        that were in flight when it opened fail while it is open: they change nothing
        (only a failed probe, or a failure after the cooldown, opens it for longer)."""
        self.failures += 1
        self.probing = False
        if self.failures < self.threshold or now < self.open_until:
            return False
        cooldown = min(self.max_cooldown_s, self.cooldown_s * 2**self.opened)
        self.opened += 1
        self.open_until = now + cooldown
        return True
