"""The in-memory reports on push notifications (the port of ``push.service``), run
through the same repository suite as ``MongoPushStates``."""

from __future__ import annotations

from collections.abc import Sequence

from ..push.models import Engagement, PushEvent, PushState


class InMemoryPushStates:
    def __init__(self) -> None:
        self.states: dict[str, PushState] = {}
        self.writes = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def of_many(self, push_ids: Sequence[str]) -> dict[str, PushState]:
        return {i: self.states[i] for i in push_ids if i in self.states}

    def _held(self, push_id: str, app_id: str, uid: str) -> PushState:
        return self.states.setdefault(push_id, PushState(id=push_id, app_id=app_id, uid=uid))

    async def mark(
        self, push_id: str, app_id: str, uid: str, event: PushEvent, at: int
    ) -> PushState:
        state = self._held(push_id, app_id, uid)
        field = f"{event}_at"
        if getattr(state, field) is not None:
            return state
        return self._changed(state, **{field: at, "updated_at": at})

    async def engage(
        self, push_id: str, app_id: str, uid: str, topic: str | None, at: int
    ) -> PushState:
        state = self._held(push_id, app_id, uid)
        first = state.engaged_at is None
        if not first and (topic is None or state.engagement_of(topic) is not None):
            return state
        return self._changed(
            state,
            engaged_at=at if first else state.engaged_at,
            engagements=[*state.engagements, Engagement(topic=topic, at=at)],
            updated_at=at,
        )

    def _changed(self, state: PushState, **changes: object) -> PushState:
        self.writes += 1
        changed = state.model_copy(update=changes)
        self.states[state.id] = changed
        return changed
