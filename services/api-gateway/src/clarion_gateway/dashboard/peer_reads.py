"""How the pages call a peer's internal API (the user directory, the dispatcher, the
webhook emitter) over the peers' client (``proxies.peers``), as the public routes call
it, and say in words what went wrong: a page shows the problem, never a stack trace.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from ..proxies.peers import Forward, Peer, PeerResponse, Peers, PeerUnavailable

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class PeerProblem(Exception):
    """A peer could not answer; ``message`` says so in words, ``status`` is what the
    page answers with."""

    def __init__(self, message: str, status: int = 503) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def error_message(body: bytes, fallback: str, names: tuple[str, ...] = ("message",)) -> str:
    """The first of ``names`` an error envelope's ``error`` has, else ``fallback``."""
    try:
        error = json.loads(body).get("error", {})
    except (ValueError, AttributeError):
        return fallback
    said = [error.get(n) for n in names] if isinstance(error, dict) else []
    message = next((m for m in said if m), None)
    return str(message) if message else fallback


async def read_or_note(read: Awaitable[T], problems: list[str]) -> T | None:
    """What ``read`` answers; None when the peer could not, its problem added to
    ``problems`` (the page shows the rest, and says so)."""
    try:
        return await read
    except PeerProblem as exc:
        problems.append(exc.message)
        return None


class PeerCalls:
    """One peer's internal API; its failures raised as ``problem``, in words that name
    the peer (``name``: "The dispatcher")."""

    def __init__(self, peers: Peers, peer: Peer, name: str, problem: type[PeerProblem]) -> None:
        self.peers, self.peer = peers, peer
        self._name, self._problem = name, problem

    def unavailable(self) -> PeerProblem:
        return self._problem(f"{self._name} did not answer. Try again in a moment.")

    def failed(self, status: int) -> PeerProblem:
        return self._problem(f"{self._name} answered with an error ({status}). Try again.")

    async def call(
        self, method: str, path: str, query: str = "", body: bytes = b""
    ) -> PeerResponse:
        """The answer, whatever its status (a JSON ``body`` is sent as such)."""
        headers = (("content-type", "application/json"),) if body else ()
        try:
            return await self.peers.forward(self.peer, Forward(method, path, query, body, headers))
        except PeerUnavailable as exc:
            raise self.unavailable() from exc

    async def get(self, path: str, query: str) -> bytes | None:
        """A read's body; None for a 404. A 400 is the filters refused, in its words."""
        answer = await self.call("GET", path, query)
        if answer.status == 404:
            return None
        if answer.status == 400:
            raise self._problem(
                f"{self._name} refused the filters: "
                + error_message(answer.body, "they are not valid.", ("devMessage", "message"))
            )
        if answer.status != 200:
            raise self.failed(answer.status)
        return answer.body

    def parse(self, model: type[M], body: bytes) -> M:
        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            raise self._problem(f"{self._name} answered something unexpected.") from exc
