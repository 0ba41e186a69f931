"""The dispatcher's batch status, read over its internal API (it owns batches)."""

from __future__ import annotations

from urllib.parse import quote

from clarion_shared.api import Data

from ..proxies.peers import Forward, Peers, PeerUnavailable
from .models import BatchPublic


class PeerBatchStatuses:
    def __init__(self, peers: Peers) -> None:
        self._peers = peers

    async def get(self, app_id: str, batch_id: str) -> BatchPublic | None:
        path = f"/internal/apps/{quote(app_id, safe='')}/batches/{quote(batch_id, safe='')}"
        answer = await self._peers.forward("dispatcher", Forward("GET", path, "", b"", ()))
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise PeerUnavailable("dispatcher", False, f"batch status answered {answer.status}")
        return Data[BatchPublic].model_validate_json(answer.body).data
