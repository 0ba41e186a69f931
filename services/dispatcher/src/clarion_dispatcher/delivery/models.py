"""Delivery outcomes as stored: one per delivery job (``job_id`` == the notification
record id), written by the delivery worker after the provider's answer.

``committing`` is a two-phase provider's claim (SMTP: the message is written, its end
not yet), one per attempt (``attempts``): written just before the message is committed
to the provider. A copy of the job that finds its attempt claimed but no outcome knows
the provider may have taken it: it sends again (nothing is lost) and its outcome says
``resent``. A later attempt exists only when that one was answered with a retry, so an
earlier attempt's claim means nothing to it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.contracts.sends import ChannelType

OutcomeStatus = Literal["sent", "failed", "committing"]


class DeliveryOutcome(BaseModel):
    """What became of one delivery job at its provider."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    job_id: str
    app_id: str
    send_id: str
    chunk: int = 0
    uid: str
    channel_type: ChannelType
    channel_id: str
    status: OutcomeStatus
    error: ErrorInfo | None = None
    provider_id: str | None = None
    attempts: int = 1
    resent: bool = False  # sent again after a claimed attempt's worker died
    at: int
