"""The user-directory's internal API as campaigns use it: which uids exist, and which
users a users-list filter matches (``/internal/apps/{app}/audiences/exist`` and
``.../audiences/select``), over the internal HTTP client the proxies use (``proxies.peers``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from clarion_shared.errors import Invalid
from clarion_shared.public.users import UsersExist, UsersSelected

from ..proxies.peers import Forward, Peers, PeerUnavailable

_JSON = (("content-type", "application/json"),)


class DirectoryRefused(PeerUnavailable):
    """The directory answered an internal call with an unexpected status."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__("directory", False, f"answered {status}: {body[:300]!r}")


class PeerDirectory:
    def __init__(self, peers: Peers) -> None:
        self._peers = peers  # started and stopped by the gateway, as a resource of its own

    async def existing(self, app_id: str, uids: Sequence[str]) -> set[str]:
        data = await self._post(app_id, "exist", {"uids": list(uids)})
        return set(UsersExist.model_validate(data).found)

    async def select(
        self, app_id: str, filters: Mapping[str, Any], limit: int
    ) -> tuple[list[str], bool]:
        data = await self._post(app_id, "select", {"filter": dict(filters), "limit": limit})
        selected = UsersSelected.model_validate(data)
        return list(selected.uids), selected.more

    async def _post(self, app_id: str, what: str, body: dict[str, Any]) -> Any:
        path = f"/internal/apps/{quote(app_id, safe='')}/audiences/{what}"
        answer = await self._peers.forward(
            "directory", Forward("POST", path, "", json.dumps(body).encode(), _JSON)
        )
        if answer.status == 400:
            # The filter refused by the directory: the client's to fix.
            error = json.loads(answer.body).get("error", {})
            raise Invalid(
                error.get("message", "The filter is not valid."),
                dev_message=error.get("devMessage"),
                details=error.get("details"),
            )
        if answer.status != 200:
            raise DirectoryRefused(answer.status, answer.body)
        return json.loads(answer.body)["data"]
