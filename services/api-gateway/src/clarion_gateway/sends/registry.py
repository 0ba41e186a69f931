"""The batch registry: the dispatcher's ``PUT /internal/apps/{app}/batches/{batch}``.

The dispatcher owns batches; the gateway names a batch's chunks there before it
publishes them, over the internal HTTP client it forwards queries with
(``proxies.peers``). A PUT: the client sends it once more on a new connection when a
pooled one died under it, and the dispatcher takes a repeat as a no-op.
"""

from __future__ import annotations

from urllib.parse import quote

from clarion_shared.public.batches import BatchRegistration

from ..proxies.peers import Forward, Peers, PeerUnavailable
from .service import RegistrationFailed

_JSON = (("content-type", "application/json"),)


class PeerBatchRegistry:
    def __init__(self, peers: Peers) -> None:
        self._peers = peers  # started and stopped by the gateway, as a resource of its own

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def register(self, app_id: str, batch_id: str, batch: BatchRegistration) -> None:
        path = f"/internal/apps/{quote(app_id, safe='')}/batches/{quote(batch_id, safe='')}"
        body = batch.model_dump_json(by_alias=True).encode()
        try:
            answer = await self._peers.forward("dispatcher", Forward("PUT", path, "", body, _JSON))
        except PeerUnavailable as exc:
            raise RegistrationFailed(str(exc)) from exc
        if not 200 <= answer.status < 300:
            detail = answer.body[:300].decode(errors="replace")
            raise RegistrationFailed(f"the dispatcher answered {answer.status}: {detail}")
