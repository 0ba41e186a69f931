"""Topic ``clarion.users.events``: users and presence announced by other services.

Key: ``app_id:uid`` so the events of one user stay ordered.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, JsonValue, TypeAdapter

from .base import Contract, JsonObject


class UserUpserted(Contract):
    type: Literal["user_upserted"] = "user_upserted"
    v: Literal[1] = 1
    app_id: str
    uid: str
    name: str | None = None
    avatar: str | None = None
    link: str | None = None
    role: str | None = None
    metadata: JsonObject | None = None
    tags: list[str] | None = None
    occurred_at: int


class UserDeleted(Contract):
    type: Literal["user_deleted"] = "user_deleted"
    v: Literal[1] = 1
    app_id: str
    uid: str
    occurred_at: int


class PresenceChanged(Contract):
    type: Literal["presence_changed"] = "presence_changed"
    v: Literal[1] = 1
    app_id: str
    uid: str
    status: Literal["online", "offline"]
    occurred_at: int


UserEvent = Annotated[UserUpserted | UserDeleted | PresenceChanged, Field(discriminator="type")]
user_event_adapter: TypeAdapter[UserUpserted | UserDeleted | PresenceChanged] = TypeAdapter(
    UserEvent
)

__all__ = ["JsonValue", "PresenceChanged", "UserDeleted", "UserEvent", "UserUpserted"]
