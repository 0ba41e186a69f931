"""The delivery workers' settings: a part of the dispatcher's (``CLARION_DISPATCHER_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field

from clarion_shared.contracts.sends import CHANNEL_TYPES
from clarion_shared.settings import ServiceSettings

DELIVERED_TYPES = tuple(t for t in CHANNEL_TYPES if t != "in_app")


class DeliverySettings(ServiceSettings):
    role: Literal["dispatcher", "delivery"] = Field(
        default="dispatcher",
        description="What this process runs: `dispatcher` (fan-out, tracker, analytics, "
        "the internal API) or `delivery` (the delivery workers of `delivery_types`). "
        "`make run` starts one of each.",
    )
    delivery_types: str = Field(
        default=",".join(DELIVERED_TYPES),
        description="The channel types a delivery process delivers (comma list): run "
        "one process per type to scale each on its own.",
    )
    delivery_max_records: int = Field(
        default=500, ge=1, description="Jobs a worker handles together from one fetch."
    )
    delivery_max_attempts: int = Field(
        default=8, ge=1, description="Provider calls per job before it fails for good."
    )
    delivery_retry_base_s: float = Field(
        default=2.0,
        gt=0,
        description="The first retry waits 1-2x this (half of it plus jitter), doubling.",
    )
    delivery_retry_cap_s: float = Field(default=600.0, gt=0, description="The longest wait.")
    delivery_defer_after_s: float = Field(
        default=1.0,
        ge=0,
        description="A job its channel's rate limit would hold longer goes to a retry "
        "topic instead, so the fetch (and other channels' jobs) never waits for it.",
    )
    delivery_hold_s: float = Field(
        default=30.0,
        gt=0,
        le=240,
        description="How long a retry topic's fetch is held for its jobs to come due.",
    )
    delivery_rate_limit_per_second: float | None = Field(
        default=None,
        gt=0,
        description="The rate limit of a channel that sets no `rateLimitPerSecond` (per "
        "process); none by default.",
    )
    delivery_circuit_failures: int = Field(
        default=10, ge=1, description="Transient failures in a row that open a circuit."
    )
    delivery_circuit_cooldown_s: float = Field(
        default=15.0, gt=0, description="How long a circuit first stays open (doubling)."
    )
    delivery_ca_file: str | None = Field(
        default=None,
        description="A PEM file of extra CA certificates trusted for provider "
        "connections (a private relay; the tests' local provider servers).",
    )
    allow_private: bool = Field(
        default=False,
        validation_alias=AliasChoices("CLARION_WEBHOOKS_ALLOW_PRIVATE", "allow_private"),
        description="CLARION_WEBHOOKS_ALLOW_PRIVATE: provider URLs may be loopback or "
        "private addresses, and plain http (local runs and tests).",
    )

    def delivered_types(self) -> list[str]:
        wanted = [t.strip() for t in self.delivery_types.split(",") if t.strip()]
        unknown = sorted(set(wanted) - set(DELIVERED_TYPES))
        if unknown:
            raise ValueError(f"delivery_types: unknown channel types {unknown}")
        return wanted

    def delivery_group_id(self, prefix: str) -> str:
        """The prefix of the workers' consumer groups, apart from the fan-out's."""
        return f"{prefix}-delivery"
