"""Topic ``clarion.replies``: results of realtime sends, read by the gateway that asked.

Key: the request id. Every gateway instance reads the whole topic and keeps only the
replies whose ``request_id`` it is waiting for.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Contract, ErrorInfo


class ReceiverResult(Contract):
    uid: str
    status: Literal["sent", "failed"]
    code: str | None = None
    message: str | None = None


class SendResult(Contract):
    type: Literal["send_result"] = "send_result"
    v: Literal[1] = 1
    request_id: str
    send_id: str
    receivers: list[ReceiverResult] = Field(default_factory=list)
    error: ErrorInfo | None = None
