"""A batch's status and its receivers (owned by the dispatcher, forwarded by the gateway),
and the registration the gateway sends the dispatcher before publishing a batch.

A campaign is sent as a batch is (``mode="campaign"``, its id as the batch id): the same
registration, status and receivers describe it."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from ..api import ApiModel
from ..contracts.sends import ChannelType

BatchStatus = Literal["queued", "dispatching", "completed", "partially_failed", "failed"]
ReceiverStatus = Literal["pending", "sent", "failed"]
BatchMode = Literal["batch", "campaign"]
"""The send modes tracked as batches (a realtime send is not)."""


def _is_none(value: object) -> bool:
    return value is None


def _is_batch(value: object) -> bool:
    return value == "batch"


class BatchPublic(ApiModel):
    """``GET /v3/campaigns/notifications/batches/{batchId}``: ``queued`` until a chunk is
    dispatched, ``dispatching`` until the dispatcher decides the batch is final, then
    ``completed`` (all sent), ``partially_failed`` or ``failed`` (all failed).
    ``delivered`` counts the receivers whose in-app feed item was marked delivered."""

    model_config = ConfigDict(frozen=True)

    batch_id: str
    status: BatchStatus
    total: int
    sent: int
    delivered: int
    failed: int
    pending: int
    created_at: int
    completed_at: int | None


class BatchReceiverPublic(ApiModel):
    """One receiver of a batch: ``pending`` until all its deliveries are final, then
    ``sent`` (one of them sent) or ``failed`` (all failed, with the code and message)."""

    model_config = ConfigDict(frozen=True)

    uid: str
    status: ReceiverStatus
    code: str | None = Field(default=None, exclude_if=_is_none)
    message: str | None = Field(default=None, exclude_if=_is_none)


class BatchRegistration(ApiModel):
    """``PUT /internal/apps/{app_id}/batches/{batch_id}``: the gateway names a batch's
    receivers, chunk by chunk as it publishes them, before publishing any. ``mode`` is
    the mode of the chunks' commands: a campaign is registered under its campaign id
    with ``"campaign"``, and its ``BatchCompleted`` says so."""

    model_config = ConfigDict(frozen=True)

    total: int = Field(ge=1)
    created_at: int = Field(ge=0)
    channels: list[ChannelType] = Field(min_length=1)
    chunks: list[list[str]] = Field(min_length=1, description="the receivers, chunk by chunk")
    # Left out when "batch": a batch's registration is sent as it was before campaigns.
    mode: BatchMode = Field(
        default="batch",
        exclude_if=_is_batch,
        description="`campaign` for a campaign's send (its id is the batch id)",
    )
