"""Topics ``clarion.jobs.<channel type>``: one delivery job per user and channel.

Key: ``app_id:uid``. The job carries ids; the worker reloads the notification record
it delivers, so a stale or replayed job cannot undo a newer state.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Contract, JsonObject
from .sends import ChannelType, SendMode


class DeliveryJob(Contract):
    type: Literal["delivery_job"] = "delivery_job"
    v: Literal[1] = 1
    job_id: str = Field(description="the notification record id (send, uid, channel)")
    app_id: str
    send_id: str
    uid: str
    channel_type: ChannelType
    channel_id: str
    content: JsonObject
    contact: JsonObject = Field(default_factory=dict)
    attempt: int = Field(default=1, ge=1, description="the provider call this job is for")
    not_before: int | None = Field(
        default=None, description="a retry's due time (ms since the epoch)"
    )
    template_id: str | None = None
    mode: SendMode = "realtime"
    chunk: int = Field(default=0, description="the send's chunk the receiver is in")
    created_at: int
