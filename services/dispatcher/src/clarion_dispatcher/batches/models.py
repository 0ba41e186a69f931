"""Batches as stored (snake_case); as shown (the API's camelCase JSON) they are
``clarion_shared.public.batches``, which the gateway documents too.

A batch is one ``Batch`` document and one ``BatchChunk`` per chunk of its receivers:
the fan-out writes a chunk's outcomes into its own document (no two chunks share one),
and the tracker alone decides the batch's final status. A campaign's send is a batch of
mode ``campaign`` (its campaign id as the batch id).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.contracts.sends import ChannelType
from clarion_shared.contracts.status import BatchStatus as FinalStatus
from clarion_shared.public.batches import (
    BatchMode,
    BatchPublic,
    BatchReceiverPublic,
    BatchRegistration,
    BatchStatus,
    ReceiverStatus,
)

__all__ = [
    "Batch",
    "BatchChunk",
    "BatchMode",
    "BatchPublic",
    "BatchReceiverPublic",
    "BatchRegistration",
    "BatchStatus",
    "FinalStatus",
    "ReceiverOutcome",
    "ReceiverStatus",
    "StoredStatus",
]

StoredStatus = Literal["queued", "completed", "partially_failed", "failed"]
"""What the batch document says: ``queued`` until decided (``dispatching`` is shown
when a chunk is dispatched, from the chunk documents)."""


class Batch(BaseModel):
    """One batch. ``id`` is derived from (app, batch); ``decided_by`` names the status
    record (``topic:partition:offset``) whose handling decided the batch final.
    ``mode`` is ``batch`` for a document written before campaigns were tracked."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    app_id: str
    batch_id: str
    total: int
    chunks: int
    channels: list[ChannelType]
    created_at: int
    mode: BatchMode = "batch"
    status: StoredStatus = "queued"
    final: bool = False
    completed_at: int | None = None
    decided_by: str | None = None
    decided_event: str | None = None


class ReceiverOutcome(BaseModel):
    """A receiver's state in its chunk (API.md, Finality). While it is ``pending`` with
    deliveries queued for a worker, it also remembers what the tracker needs to settle
    it from the workers' events: the channels still queued, whether one of its
    deliveries was sent, and the first failure (``code`` and ``message`` are its final
    state's only)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    uid: str
    status: ReceiverStatus = "pending"
    code: str | None = None
    message: str | None = None
    queued: list[str] = Field(
        default_factory=list, description="the channel ids of its deliveries still queued"
    )
    any_sent: bool = Field(default=False, description="one of its deliveries is sent")
    failure: ErrorInfo | None = Field(
        default=None, description="the first failure among its final deliveries"
    )


class BatchChunk(BaseModel):
    """One chunk of a batch, its receivers in send order. ``dispatched`` once the
    fan-out has recorded their outcomes, with the counts of each status (always in step
    with the receivers: status reads, the tracker and paging read those, without the
    receivers); ``delivered`` holds the uids whose feed item was marked delivered."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    batch_key: str = Field(description="the batch document's _id: the chunks' equality key")
    app_id: str
    batch_id: str
    chunk: int
    receivers: list[ReceiverOutcome] = Field(default_factory=list)
    dispatched: bool = False
    sent: int = 0
    failed: int = 0
    pending: int = 0
    delivered: list[str] = Field(default_factory=list)
    event_read: bool = Field(
        default=True,
        description="the tracker has read the chunk's ChunkDispatched: the batch's "
        "BatchCompleted, decided after every chunk's, follows them all on the topic. "
        "Written False with every new chunk; a document from before the field (none "
        "there) had its event read, or will have, so it counts as read.",
    )

    def count(self, status: ReceiverStatus | None) -> int:
        """How many of its receivers are in ``status`` (all of them for None)."""
        if status is None:
            return self.sent + self.failed + self.pending
        return {"sent": self.sent, "failed": self.failed, "pending": self.pending}[status]
