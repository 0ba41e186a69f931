"""Use cases of deliveries, and the ports they need: which endpoints an event is owed
to, disabling an endpoint, an operator's retry and replay, the list of deliveries."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Protocol

from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.config_webhooks import WebhookConfig
from clarion_shared.contracts.webhook_state import DisableReason, WebhookDisabled
from clarion_shared.errors import Conflict, NotFound
from clarion_shared.ids import derive_id
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger
from clarion_shared.public.webhook_deliveries import DeliveryStatus

from ..endpoints.service import EndpointCache, EndpointRepository
from ..events.domain import WebhookEvent, body, webhook_event_id
from .domain import Delivery, delivery_key
from .sender import Outcome

log = get_logger(__name__)

Disable = Callable[[WebhookConfig, DisableReason, str], Awaitable[None]]


class SenderPort(Protocol):
    async def send(
        self,
        url: str,
        msg_id: str,
        body: bytes,
        secrets: Sequence[str],
        basic_auth: tuple[str, str] | None,
        now_s: int,
    ) -> Outcome: ...


class DeliveryRepository(Resource, Protocol):
    async def add_intake(self, intake_id: str, owner: str, items: Sequence[Delivery]) -> None: ...

    async def drop_intake(self, intake_id: str) -> None: ...

    async def intakes_of(self, owner: str) -> list[tuple[str, list[Delivery]]]: ...

    async def move_intake(self, intake_id: str, owner: str) -> None: ...

    async def record_first(self, deliveries: Sequence[Delivery], owner: str) -> None:
        """Store each record unless one is stored already."""
        ...

    async def save(self, delivery: Delivery, owner: str) -> None: ...

    async def recorded(self, delivery_id: str) -> bool: ...

    async def get(self, delivery_id: str) -> Delivery | None: ...

    async def claim(self, delivery: Delivery, owner: str) -> bool:
        """Store ``delivery`` (pending again) unless its record is pending; True if so."""
        ...

    async def of_endpoint(self, endpoint_key: str, status: str | None) -> list[Delivery]: ...

    async def pending_of(self, owner: str) -> list[Delivery]: ...


class StatePublisher(Protocol):
    async def webhook_disabled(self, event: WebhookDisabled) -> None: ...


class Queue(Protocol):
    """The lanes, as the use cases see them (``engine.Lanes``)."""

    owner: str

    async def intake(self, deliveries: Sequence[Delivery]) -> None: ...

    def enqueue(self, delivery: Delivery, intake_id: str | None = None) -> None: ...


async def deliveries_for(
    endpoints: EndpointCache, events: Sequence[WebhookEvent], skip: str | None = None
) -> list[Delivery]:
    """One delivery per event and enabled endpoint of its app subscribed to its trigger
    (``skip``: an endpoint left out, the one an ``after_webhook_disabled`` is about)."""
    out: list[Delivery] = []
    for event in events:
        for config in (await endpoints.of_app(event.app_id)).values():
            if not config.enabled or event.trigger not in config.triggers:
                continue
            if config.webhook_id == skip:
                continue
            out.append(
                Delivery(
                    msg_id=event.event_id,
                    app_id=event.app_id,
                    webhook_id=config.webhook_id,
                    trigger=event.trigger,
                    body=body(event, config.webhook_id).decode(),
                    created_at=event.occurred_at,
                    updated_at=event.occurred_at,
                )
            )
    return out


async def disable_endpoint(
    endpoints: EndpointRepository,
    cache: EndpointCache,
    states: StatePublisher,
    queue: Queue,
    config: WebhookConfig,
    reason: DisableReason,
    detail: str,
    now: int,
) -> None:
    """Stop delivering to the endpoint, tell the gateway (which owns its configuration)
    and the app's other endpoints subscribed to ``after_webhook_disabled``. The event's
    id is derived from the configuration disabled, so two processes disabling it at
    once announce it once to receivers that drop repeated ids."""
    event = WebhookDisabled(
        event_id=derive_id(config.key, str(config.updated_at), "disabled"),
        app_id=config.app_id,
        webhook_id=config.webhook_id,
        reason=reason,
        detail=detail,
        disabled_at=now,
        config_updated_at=config.updated_at,
    )
    # Told first: a publish that fails leaves the endpoint enabled here, so its next
    # failure tries again; the gateway applies a repeat of the same event once.
    await states.webhook_disabled(event)
    if not await endpoints.mark_disabled(config.key, config.updated_at, f"{reason}: {detail}"):
        return  # disabled already (announced then), or changed since
    cache.forget(config.app_id)
    log.warning("webhooks.endpoint_disabled", key=config.key, reason=reason, detail=detail)
    data: JsonObject = {
        "webhookId": config.webhook_id,
        "name": config.name,
        "webhookURL": config.url,
        "reason": reason,
        "detail": detail,
        "disabledAt": now,
    }
    announced = WebhookEvent(
        event_id=webhook_event_id(event.event_id, "after_webhook_disabled"),
        app_id=config.app_id,
        send_id=config.webhook_id,
        trigger="after_webhook_disabled",
        occurred_at=now,
        data=data,
    )
    await queue.intake(await deliveries_for(cache, [announced], skip=config.webhook_id))


async def get_delivery(
    deliveries: DeliveryRepository, app_id: str, webhook_id: str, msg_id: str
) -> Delivery:
    found = await deliveries.get(delivery_key(app_id, webhook_id, msg_id))
    if found is None:
        raise NotFound("Delivery")
    return found


async def retry_by_hand(
    deliveries: DeliveryRepository,
    queue: Queue,
    app_id: str,
    webhook_id: str,
    msg_id: str,
    now: int,
) -> Delivery:
    """Send a finished delivery again now (one attempt); 409 while it is pending."""
    found = await get_delivery(deliveries, app_id, webhook_id, msg_id)
    again = replace(found, status="pending", next_attempt_at=now, updated_at=now, kind="manual")
    if found.status == "pending" or not await deliveries.claim(again, queue.owner):
        raise Conflict("This delivery is pending: it will be attempted on its schedule.")
    queue.enqueue(again)
    return again


async def replay(
    deliveries: DeliveryRepository,
    queue: Queue,
    app_id: str,
    webhook_id: str,
    since: int,
    until: int,
    now: int,
) -> int:
    """Send again every delivery to the endpoint that failed, among events of
    ``since``..``until``; how many."""
    count = 0
    for found in await deliveries.of_endpoint(f"{app_id}:{webhook_id}", "failed"):
        if not since <= found.created_at <= until:
            continue
        again = replace(found, status="pending", next_attempt_at=now, updated_at=now, kind="replay")
        if await deliveries.claim(again, queue.owner):
            queue.enqueue(again)
            count += 1
    log.info("webhooks.replayed", app_id=app_id, webhook_id=webhook_id, count=count)
    return count


async def list_deliveries(
    deliveries: DeliveryRepository, app_id: str, webhook_id: str, status: DeliveryStatus | None
) -> list[Delivery]:
    """The endpoint's deliveries, newest first."""
    found = await deliveries.of_endpoint(f"{app_id}:{webhook_id}", status)
    found.sort(key=lambda d: (d.created_at, d.msg_id), reverse=True)
    return found


def payload_of(delivery: Delivery) -> JsonObject:
    loaded: JsonObject = json.loads(delivery.body)
    return loaded
