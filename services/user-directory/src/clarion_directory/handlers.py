"""HTTP routes and Kafka subscribers: parse, call one use case, answer or publish.

The gateway forwards ``/v3/users...`` to ``/internal/apps/{app_id}/users...`` after it
has authenticated the app, and passes status and body back as they are: these routes
answer in the public API's envelopes and error codes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from faststream.kafka import KafkaMessage
from pydantic import TypeAdapter

from clarion_shared import kafka, topics
from clarion_shared.contracts.base import Contract
from clarion_shared.contracts.directory_lookups import LookupUsers
from clarion_shared.contracts.users_events import (
    PresenceChanged,
    UserDeleted,
    UserUpserted,
    user_event_adapter,
)
from clarion_shared.errors import ApiError
from clarion_shared.http import one, page

from . import service
from .domain import (
    UidAlreadyExists,
    UserCreate,
    UserImport,
    UserNotFound,
    UserPublic,
    UserQuery,
    UserUpdate,
)
from .service import UserRepository

lookup_adapter: TypeAdapter[LookupUsers] = TypeAdapter(LookupUsers)


@contextmanager
def _api_errors() -> Iterator[None]:
    """Domain errors as the public API's error codes."""
    try:
        yield
    except UserNotFound as exc:
        raise ApiError(
            404,
            "ERR_USER_NOT_FOUND",
            "The user does not exist.",
            f"No user with uid {exc.uid!r} in this app.",
        ) from None
    except UidAlreadyExists as exc:
        raise ApiError(
            409,
            "ERR_UID_ALREADY_EXISTS",
            "A user with this uid already exists.",
            f"The uid {exc.uid!r} is already taken in this app.",
        ) from None


def users_router(repo: UserRepository) -> APIRouter:
    router = APIRouter(prefix="/internal/apps/{app_id}/users", tags=["users"])

    @router.post("", summary="Create a user")
    async def create_user(app_id: str, body: UserCreate) -> dict[str, Any]:
        with _api_errors():
            user = await service.create_user(repo, app_id, body)
        return one(UserPublic.of(user).to_json())

    @router.post("/import", summary="Create or update up to 1,000 users")
    async def import_users(app_id: str, body: UserImport) -> dict[str, Any]:
        result = await service.import_users(repo, app_id, body.users)
        return one(result.model_dump(mode="json"))

    @router.get("", summary="List and search users")
    async def list_users(app_id: str, query: Annotated[UserQuery, Query()]) -> dict[str, Any]:
        found = await service.list_users(repo, app_id, query)
        users = [UserPublic.of(user).to_json() for user in found.users]
        return page(users, found.total, query.page, query.per_page)

    @router.get("/{uid}", summary="Get a user")
    async def get_user(app_id: str, uid: str) -> dict[str, Any]:
        with _api_errors():
            user = await service.get_user(repo, app_id, uid)
        return one(UserPublic.of(user).to_json())

    @router.put("/{uid}", summary="Update a user's given fields")
    async def update_user(app_id: str, uid: str, body: UserUpdate) -> dict[str, Any]:
        with _api_errors():
            user = await service.update_user(repo, app_id, uid, body)
        return one(UserPublic.of(user).to_json())

    @router.delete("/{uid}", summary="Delete a user")
    async def delete_user(app_id: str, uid: str) -> dict[str, Any]:
        with _api_errors():
            await service.delete_user(repo, app_id, uid)
        return one({"success": True})

    return router


def register_subscribers(
    groups: kafka.ConsumerGroups,
    repo: UserRepository,
    auto_offset_reset: Literal["earliest", "latest"] = "earliest",
) -> None:
    """Uid lookups (request/reply) and user events from other services."""
    broker = groups.broker
    options = {"auto_offset_reset": auto_offset_reset}

    async def answer(lookups: Sequence[LookupUsers]) -> None:
        replies = await service.resolve_many(repo, lookups)
        by_topic: dict[str, list[tuple[str | None, Contract]]] = {}
        for lookup, reply in zip(lookups, replies, strict=True):
            by_topic.setdefault(lookup.reply_topic, []).append((lookup.request_id, reply))
        await asyncio.gather(
            *(kafka.publish_many(broker, topic, msgs) for topic, msgs in by_topic.items())
        )

    # A fetch's lookups are answered together: they share one read per app. Realtime
    # lookups have their own topic, consumed beside the batch one, so they never wait
    # for a batch's (possibly whole-app) read.
    for topic in (topics.DIRECTORY_LOOKUPS_REALTIME, topics.DIRECTORY_LOOKUPS):
        groups.consume_batches(topic, lookup_adapter, answer, max_records=64, **options)

    async def apply(event: UserUpserted | UserDeleted | PresenceChanged) -> None:
        await service.apply_user_event(repo, event)

    @groups.subscriber(topics.USERS_EVENTS, **options)
    async def on_user_event(msg: KafkaMessage) -> None:
        await kafka.consume_record(broker, msg, topics.USERS_EVENTS, user_event_adapter, apply)
