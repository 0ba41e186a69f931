"""Run a request once per ``Idempotency-Key``: the same key and request within the TTL
answer the first response and do nothing again; the same key with another request is
409 ``ERR_CONFLICT``.

While the first request runs, a retry is 409 ``ERR_CONFLICT``. If its process dies
before answering, the claim is taken over by the first retry after the lease
(``IDEMPOTENCY_LEASE_S``): that retry runs again, and since a send's id is derived from
the key, it publishes the same commands with the same ids, which the dispatcher does
not fan out twice. Which responses are kept: ``domain``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from clarion_shared.lifecycle import Resource

from .domain import IdempotencyRecord, KeyReused, StillRunning, StoredResponse, check_key


class IdempotencyRepository(Resource, Protocol):
    async def begin(
        self, scope_key: str, fingerprint: str, now: int, ttl_s: int, lease_s: int
    ) -> IdempotencyRecord | None:
        """Claim the key (None) or return the live record that already holds it.

        A record expires ``ttl_s`` after its claim. A claim still without a response
        ``lease_s`` after it was made is abandoned (its process died mid-request) and
        is taken over too.
        """
        ...

    async def finish(self, scope_key: str, response: StoredResponse) -> None: ...

    async def release(self, scope_key: str) -> None: ...


@dataclass(frozen=True)
class Outcome:
    response: StoredResponse
    replayed: bool


@dataclass(frozen=True)
class Claim:
    """One request's hold on a key: who asks, with what, and for how long."""

    app_id: str
    key: str
    fingerprint: str
    now: int
    ttl_s: int
    lease_s: int


async def run_once(
    repo: IdempotencyRepository,
    claim: Claim,
    call: Callable[[], Awaitable[StoredResponse]],
    error_response: Callable[[Exception], StoredResponse | None],
) -> Outcome:
    """``call``'s response, or the stored one of the first request with the key.

    An error ``call`` raises is stored as ``error_response`` renders it (None: an
    unexpected error, a 500) and raised again, so a retry answers the same envelope.
    """
    key = check_key(claim.key)
    scope_key = f"{claim.app_id}:{key}"
    record = await repo.begin(scope_key, claim.fingerprint, claim.now, claim.ttl_s, claim.lease_s)
    if record is not None:
        if record.fingerprint != claim.fingerprint:
            raise KeyReused(key)
        if record.response is None:
            raise StillRunning(key)
        return Outcome(record.response, replayed=True)
    try:
        response = await call()
    except Exception as exc:
        await _settle(repo, scope_key, error_response(exc))
        raise
    except BaseException:
        await repo.release(scope_key)
        raise
    await _settle(repo, scope_key, response)
    return Outcome(response, replayed=False)


async def _settle(
    repo: IdempotencyRepository, scope_key: str, response: StoredResponse | None
) -> None:
    if response is not None and response.kept:
        await repo.finish(scope_key, response)
    else:
        await repo.release(scope_key)
