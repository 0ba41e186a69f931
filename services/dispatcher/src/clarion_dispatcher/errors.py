"""The dispatcher's one error mapping: its error classes → the envelope."""

from __future__ import annotations

from typing import Any

from clarion_shared.api import ERROR_RESPONSES
from clarion_shared.errors import ErrorMapper, answer

from .batches.domain import BatchNotFound
from .feed.domain import FeedItemNotFound
from .notifications.domain import NotificationNotFound

ERRORS = ErrorMapper(
    {
        NotificationNotFound: answer(404, "ERR_NOT_FOUND"),
        FeedItemNotFound: answer(404, "ERR_NOT_FOUND"),
        BatchNotFound: answer(404, "ERR_NOT_FOUND"),
    }
)

RESPONSES: dict[int | str, dict[str, Any]] = {
    status: ERROR_RESPONSES[status] for status in (400, 401, 404)
}
"""The error answers the routes document: 400 (validation), 401 (a caller without the
services' shared secret: clients are authenticated by the gateway) and 404."""
