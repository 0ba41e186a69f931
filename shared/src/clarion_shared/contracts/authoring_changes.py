"""Topic ``clarion.authoring.changes``: an app's templates or channels have just changed.

Key: the app id. The gateway publishes one record after every write of a template or a
channel (create, update, approval, a new version, archive), once the write is stored. A
record names the app and carries nothing else: whoever holds a copy of the app's
templates or channels (each gateway process caches what its sends are made of,
``clarion_gateway.authoring``) drops every copy of that app and reads the owner again.

Every gateway instance reads the topic from its end, without a consumer group: a
process starts with an empty cache and sees every change made after it started.
"""

from __future__ import annotations

from typing import Literal

from .base import Contract


class AuthoringChanged(Contract):
    type: Literal["authoring_changed"] = "authoring_changed"
    v: Literal[1] = 1
    app_id: str
    occurred_at: int
