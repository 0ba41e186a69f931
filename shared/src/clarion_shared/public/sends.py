"""Every direct send and batch of an app, and each one's receivers (owned by the
dispatcher, forwarded by the gateway, which documents and checks the list's filters too).

A Clarion extension (CometChat lists campaigns, not sends): ``GET
/v3/campaigns/notifications`` lists realtime notifications, batches and campaigns' sends
newest first; ``.../{id}/receivers`` (and ``.csv``) shows each receiver's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Query
from pydantic import ConfigDict, Field

from ..api import DEFAULT_PER_PAGE, MAX_PER_PAGE, ApiModel
from ..contracts.sends import ChannelType
from ..cursor import MAX_TIMESTAMP
from ..strict_input import MAX_PAGE
from .batches import BatchStatus, ReceiverStatus
from .notifications import ChannelStatePublic

SendType = Literal["realtime", "batch"]
SendListMode = Literal["direct", "campaign"]
"""``direct``: ``POST .../notifications/messages``; ``campaign``: a campaign's send."""
SendStatus = BatchStatus

RECEIVER_CSV_COLUMNS = (
    "uid",
    "channel_type",
    "channel_id",
    "status",
    "code",
    "message",
    "updated_at",
)
"""The columns of ``.../receivers.csv``: one row per receiver and channel (one row with
empty channel cells for a receiver not dispatched yet)."""


def _is_none(value: object) -> bool:
    return value is None


class SendPublic(ApiModel):
    """One send. ``status`` is a batch's (``queued``, ``dispatching``, then final); a
    realtime send is final when its reply is sent, unless a delivery waits for a worker
    (``dispatching``). ``delivered`` counts receivers whose in-app item was marked
    delivered: tracked for batches and campaigns, null for a realtime send."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="The notificationId, batchId or campaignId")
    type: SendType
    mode: SendListMode
    template_id: str | None = Field(description="Null until a batch's first chunk is sent")
    template_version: int | None
    channels: list[ChannelType]
    status: SendStatus
    total: int
    sent: int
    delivered: int | None
    failed: int
    pending: int
    created_at: int
    completed_at: int | None


class SendReceiverPublic(ApiModel):
    """One receiver of a send: its state (API.md, Finality), the first failure's code and
    message when it failed, and each channel's state (none before it is dispatched)."""

    model_config = ConfigDict(frozen=True)

    uid: str
    status: ReceiverStatus
    code: str | None = Field(default=None, exclude_if=_is_none)
    message: str | None = Field(default=None, exclude_if=_is_none)
    channels: list[ChannelStatePublic]
    created_at: int | None = Field(description="When it was dispatched; null while pending")
    updated_at: int | None = Field(description="Its channels' last change; null while pending")


@dataclass(frozen=True)
class SendQuery:
    """``GET .../notifications``'s filters: all optional, ``since``/``until`` inclusive."""

    type: SendType | None = None
    status: SendStatus | None = None
    template_id: str | None = None
    since: int | None = None
    until: int | None = None


_TIME = "Unix seconds, inclusive, on createdAt"


def send_query(
    type: Annotated[SendType | None, Query(description="realtime or batch")] = None,
    status: SendStatus | None = None,
    template_id: Annotated[str | None, Query(alias="templateId", max_length=200)] = None,
    since: Annotated[int | None, Query(ge=0, le=MAX_TIMESTAMP, description=_TIME)] = None,
    until: Annotated[int | None, Query(ge=0, le=MAX_TIMESTAMP, description=_TIME)] = None,
) -> SendQuery:
    """The list's filters, as a FastAPI dependency (the dispatcher parses them; the
    gateway checks and documents them the same way, and passes the query on)."""
    return SendQuery(type, status, template_id, since, until)


@dataclass(frozen=True)
class ReceiverQuery:
    """``.../receivers``' filters and page (the CSV export takes the filters only)."""

    status: ReceiverStatus | None = None
    uid: str | None = None
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE


def receiver_query(
    status: ReceiverStatus | None = None,
    uid: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE, alias="perPage")] = DEFAULT_PER_PAGE,
) -> ReceiverQuery:
    return ReceiverQuery(status, uid, page, per_page)


RECEIVERS_CSV_RESPONSE: dict[int | str, dict[str, object]] = {
    200: {
        "description": "CSV (UTF-8, a header row): one row per receiver and channel, "
        f"columns {', '.join(RECEIVER_CSV_COLUMNS)}; a cell starting with =, +, - or @ "
        "is prefixed with a quote (no spreadsheet formulas).",
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "uid,channel_type,channel_id,status,code,message,updated_at\r\n"
                "alice,in_app,in-app,sent,,,1764900000\r\n",
            }
        },
    }
}
"""The OpenAPI ``responses`` entry of the receivers' CSV export."""
