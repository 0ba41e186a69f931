"""A send's entry in the listing as stored (snake_case); as shown it is
``clarion_shared.public.sends``, which the gateway documents too."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from clarion_shared.contracts.sends import ChannelType
from clarion_shared.public.sends import (
    ReceiverQuery,
    SendListMode,
    SendPublic,
    SendQuery,
    SendReceiverPublic,
    SendStatus,
    SendType,
)

__all__ = [
    "ReceiverQuery",
    "SendEntry",
    "SendListMode",
    "SendPublic",
    "SendQuery",
    "SendReceiverPublic",
    "SendStatus",
    "SendType",
]


class SendEntry(BaseModel):
    """One send in the listing: what the list filters and sorts on. ``id`` is derived
    from (app, send). A realtime send's counts are final when written (its receivers'
    states are decided by the fan-out); a batch's are read from the batch when shown,
    and its ``status`` here follows it (``queued``, ``dispatching``, then final) so that
    the list can filter on it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    app_id: str
    send_id: str
    type: SendType
    mode: SendListMode
    template_id: str | None = None
    template_version: int | None = None
    channels: list[ChannelType]
    created_at: int
    total: int
    status: SendStatus
    sent: int = 0
    failed: int = 0
    pending: int = 0
