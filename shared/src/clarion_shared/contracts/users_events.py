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


class PushTokensInvalid(Contract):
    """Push tokens a provider reported as invalid or unregistered (the delivery worker
    publishes it): the directory removes them from the user's
    ``metadata["@private"]["pushTokens"]``; a token not there is ignored."""

    type: Literal["push_tokens_invalid"] = "push_tokens_invalid"
    v: Literal[1] = 1
    app_id: str
    uid: str
    tokens: list[str] = Field(min_length=1)
    occurred_at: int


AnyUserEvent = UserUpserted | UserDeleted | PresenceChanged | PushTokensInvalid
UserEvent = Annotated[AnyUserEvent, Field(discriminator="type")]
user_event_adapter: TypeAdapter[AnyUserEvent] = TypeAdapter(UserEvent)

__all__ = [
    "AnyUserEvent",
    "JsonValue",
    "PresenceChanged",
    "PushTokensInvalid",
    "UserDeleted",
    "UserEvent",
    "UserUpserted",
]
