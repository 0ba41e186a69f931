"""The webhook-emitter's one error mapping: its error classes → the error envelope.

It has no routes of its own yet (``/healthz``, ``/readyz`` and ``/metrics`` only), so
the common mapping is all it needs; errors of its resources go here when they come.
"""

from __future__ import annotations

from clarion_shared.errors import ErrorMapper

ERRORS = ErrorMapper({})
