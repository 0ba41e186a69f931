"""An in-memory ``DeliveryLog`` for unit tests."""

from __future__ import annotations

from collections.abc import Sequence

from ..delivery.models import DeliveryOutcome


class InMemoryDeliveries:
    def __init__(self) -> None:
        self.outcomes: dict[str, DeliveryOutcome] = {}
        self.claims: dict[tuple[str, int], DeliveryOutcome] = {}
        self.writes = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def _found(self, job_id: str) -> DeliveryOutcome | None:
        if job_id in self.outcomes:
            return self.outcomes[job_id]
        claims = [claim for (claimed, _), claim in self.claims.items() if claimed == job_id]
        return max(claims, key=lambda claim: claim.attempts, default=None)

    async def of_chunks(self, keys: Sequence[tuple[str, str, int]]) -> dict[str, DeliveryOutcome]:
        wanted = set(keys)
        found: dict[str, DeliveryOutcome] = {}
        for job_id in {*(job for job, _ in self.claims), *self.outcomes}:
            outcome = self._found(job_id)
            if outcome is not None and (outcome.app_id, outcome.send_id, outcome.chunk) in wanted:
                found[job_id] = outcome
        return found

    async def of_jobs(self, app_id: str, job_ids: Sequence[str]) -> dict[str, DeliveryOutcome]:
        return {
            job_id: self.outcomes[job_id]
            for job_id in job_ids
            if job_id in self.outcomes and self.outcomes[job_id].app_id == app_id
        }

    async def claim(self, outcomes: Sequence[DeliveryOutcome]) -> set[str]:
        self.writes += 1
        taken: set[str] = set()
        for outcome in outcomes:
            key = (outcome.job_id, outcome.attempts)
            if key in self.claims:
                taken.add(outcome.job_id)
            else:
                self.claims[key] = outcome.model_copy(update={"status": "committing"})
        return taken

    async def record(self, outcomes: Sequence[DeliveryOutcome]) -> None:
        self.writes += 1
        for outcome in outcomes:
            self.outcomes.setdefault(outcome.job_id, outcome)
