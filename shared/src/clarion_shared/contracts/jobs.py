"""Topics ``clarion.jobs.<channel type>``: one delivery job per user and channel.

Key: ``app_id:uid``. The job carries ids; the worker reloads the notification record
it delivers, so a stale or replayed job cannot undo a newer state.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Contract, JsonObject
from .sends import ChannelType


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
    attempt: int = 1
    created_at: int
