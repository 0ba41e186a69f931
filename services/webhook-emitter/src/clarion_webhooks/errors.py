"""The webhook-emitter's one error mapping: its error classes → the error envelope.

Its routes raise the shared domain errors (``NotFound``, ``Conflict``, ``Invalid``),
which the common mapping answers; nothing of its own is needed yet.
"""

from __future__ import annotations

from typing import Any

from clarion_shared.api import ERROR_RESPONSES
from clarion_shared.errors import ErrorMapper

ERRORS = ErrorMapper({})

RESPONSES: dict[int | str, dict[str, Any]] = {
    status: ERROR_RESPONSES[status] for status in (400, 401, 404)
}
"""The error answers the routes document: 400 (validation), 401 (a caller without the
services' shared secret: clients are authenticated by the gateway) and 404."""
