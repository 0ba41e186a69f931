"""In-memory fakes of the webhook-emitter's ports, with the adapters' behaviour, for
tests. ``InMemoryEndpointRepository`` is held to the same test suite as the Mongo
repository. Production code never imports this module."""

from __future__ import annotations

from collections.abc import Sequence

from clarion_shared.contracts.config_webhooks import WebhookConfig
from clarion_shared.contracts.webhook_state import WebhookDisabled

from .deliveries.domain import Delivery


class InMemoryEndpointRepository:
    """``EndpointRepository`` in a dict, with the semantics of the Mongo repository."""

    def __init__(self) -> None:
        self.endpoints: dict[str, WebhookConfig] = {}
        self.health: dict[str, int] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def upsert(self, config: WebhookConfig) -> bool:
        stored = self.endpoints.get(config.key)
        if stored is not None and stored.updated_at > config.updated_at:
            return False
        self.endpoints[config.key] = config
        return True

    async def delete(self, key: str) -> None:
        self.endpoints.pop(key, None)
        self.health.pop(key, None)

    async def mark_disabled(self, key: str, updated_at: int, reason: str) -> bool:
        stored = self.endpoints.get(key)
        if stored is None or stored.updated_at != updated_at or not stored.enabled:
            return False
        self.endpoints[key] = stored.model_copy(
            update={"enabled": False, "disabled_reason": reason}
        )
        return True

    async def failing_since(self, key: str) -> int | None:
        return self.health.get(key)

    async def mark_failing(self, key: str, since: int) -> int:
        return self.health.setdefault(key, since)

    async def mark_healthy(self, key: str) -> None:
        self.health.pop(key, None)

    async def get(self, key: str) -> WebhookConfig | None:
        return self.endpoints.get(key)

    async def for_app(self, app_id: str) -> list[WebhookConfig]:
        return [config for config in self.endpoints.values() if config.app_id == app_id]


class InMemoryDeliveries:
    """``DeliveryRepository`` in dicts, with the semantics of ``MongoDeliveries``."""

    def __init__(self) -> None:
        self.intakes: dict[str, tuple[str, list[Delivery]]] = {}
        self.records: dict[str, tuple[Delivery, str]] = {}
        self.writes = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def add_intake(self, intake_id: str, owner: str, items: Sequence[Delivery]) -> None:
        self.intakes[intake_id] = (owner, list(items))

    async def drop_intake(self, intake_id: str) -> None:
        self.intakes.pop(intake_id, None)

    async def intakes_of(self, owner: str) -> list[tuple[str, list[Delivery]]]:
        return [(i, list(items)) for i, (o, items) in self.intakes.items() if o == owner]

    async def move_intake(self, intake_id: str, owner: str) -> None:
        self.intakes[intake_id] = (owner, self.intakes[intake_id][1])

    async def record_first(self, deliveries: Sequence[Delivery], owner: str) -> None:
        self.writes += 1
        for delivery in deliveries:
            self.records.setdefault(delivery.id, (delivery, owner))

    async def save(self, delivery: Delivery, owner: str) -> None:
        self.writes += 1
        self.records[delivery.id] = (delivery, owner)

    async def recorded(self, delivery_id: str) -> bool:
        return delivery_id in self.records

    async def get(self, delivery_id: str) -> Delivery | None:
        found = self.records.get(delivery_id)
        return found[0] if found else None

    async def claim(self, delivery: Delivery, owner: str) -> bool:
        found = self.records.get(delivery.id)
        if found is None or found[0].status == "pending":
            return False
        self.records[delivery.id] = (delivery, owner)
        return True

    async def of_endpoint(self, endpoint_key: str, status: str | None) -> list[Delivery]:
        return [
            d
            for d, _ in self.records.values()
            if d.endpoint_key == endpoint_key and (status is None or d.status == status)
        ]

    async def pending_of(self, owner: str) -> list[Delivery]:
        return [d for d, o in self.records.values() if o == owner and d.status == "pending"]


class InMemoryInstances:
    """``InstanceRegistry`` in a dict."""

    def __init__(self) -> None:
        self.beats: dict[str, int] = {}
        self.locks: dict[str, str] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def beat(self, owner: str, alive_until_ms: int) -> None:
        self.beats[owner] = alive_until_ms

    async def alive_until(self) -> dict[str, int]:
        return dict(self.beats)

    async def forget(self, owner: str) -> None:
        self.beats.pop(owner, None)
        self.locks.pop(owner, None)

    async def lock(self, dead: str, by: str) -> bool:
        if dead in self.locks:
            return False
        self.locks[dead] = by
        return True

    async def holder(self, dead: str) -> str | None:
        return self.locks.get(dead)

    async def unlock(self, dead: str, by: str) -> None:
        if self.locks.get(dead) == by:
            del self.locks[dead]


class StatesSeen:
    """``StatePublisher`` that keeps what it is given."""

    def __init__(self) -> None:
        self.disabled: list[WebhookDisabled] = []

    async def webhook_disabled(self, event: WebhookDisabled) -> None:
        self.disabled.append(event)
