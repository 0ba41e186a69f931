"""``Idempotency-Key``: the same key and request within the TTL answer the first response
and do nothing again; the same key with another request is 409 ``ERR_CONFLICT``.

Responses are stored whatever their status, except 500 and 503: those mean nothing
was done (or nothing is known), so the key is released and a retry runs again. A 504 of
a realtime send is kept: its command was published, a retry must not send twice.

While the first request runs, a retry is 409 ``ERR_CONFLICT``. If its process dies
before answering, the claim is taken over by the first retry after the lease
(``IDEMPOTENCY_LEASE_S``): that retry runs again, and since a send's id is derived from
the key, it publishes the same commands with the same ids, which the dispatcher does
not fan out twice.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from clarion_shared.errors import ApiError

from .. import domain
from ..ports import IdempotencyRepository, StoredResponse

_RELEASED_STATUSES = frozenset({500, 503})
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Outcome:
    response: StoredResponse
    replayed: bool


async def run_once(
    repo: IdempotencyRepository,
    app_id: str,
    key: str,
    fingerprint: str,
    now: int,
    ttl_s: int,
    lease_s: int,
    call: Callable[[], Awaitable[StoredResponse]],
) -> Outcome:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise domain.invalid(
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters.",
            details=[{"field": "Idempotency-Key", "message": "invalid length"}],
        )
    scope_key = f"{app_id}:{key}"
    record = await repo.begin(scope_key, fingerprint, now, ttl_s, lease_s)
    if record is not None:
        if record.fingerprint != fingerprint:
            raise domain.conflict(
                "This Idempotency-Key was used with another request.",
                details={"idempotencyKey": key},
            )
        if record.response is None:
            raise domain.conflict(
                "A request with this Idempotency-Key is still running.",
                details={"idempotencyKey": key},
            )
        return Outcome(record.response, replayed=True)
    try:
        response = await call()
    except ApiError as exc:
        if exc.status in _RELEASED_STATUSES:
            await repo.release(scope_key)
        else:
            await repo.finish(
                scope_key, StoredResponse(exc.status, json.dumps(exc.body()).encode())
            )
        raise
    except BaseException:
        await repo.release(scope_key)
        raise
    if response.status in _RELEASED_STATUSES:
        await repo.release(scope_key)
    else:
        await repo.finish(scope_key, response)
    return Outcome(response, replayed=False)
