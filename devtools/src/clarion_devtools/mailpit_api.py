"""What a Mailpit received, read through its REST API (``/api/v1``), and its chaos
triggers, which make its SMTP server refuse (``clarion_devtools.smtpserver`` starts it).

Every call is async (httpx), so a test on the event loop can poll it
(``helpers.wait_until``). Message lists come newest first; ``messages()`` pages
through all of them. A chaos trigger answers an SMTP stage (``MAIL FROM``, ``RCPT TO`` or
``AUTH``) with its code at its probability (100: every time) until it is cleared.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

API_TIMEOUT_S = 30.0
PAGE_SIZE = 500


@dataclass(frozen=True)
class Address:
    name: str
    address: str


def _address(raw: Mapping[str, Any] | None) -> Address | None:
    return None if raw is None else Address(raw.get("Name") or "", raw.get("Address") or "")


def _addresses(raw: list[Mapping[str, Any]] | None) -> tuple[Address, ...]:
    return tuple(Address(a.get("Name") or "", a.get("Address") or "") for a in raw or ())


@dataclass(frozen=True)
class Summary:
    """One message as a list shows it. ``bcc`` holds the envelope recipients that no
    header names; ``username`` is the AUTH login ("" without)."""

    id: str
    message_id: str
    subject: str
    sender: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    username: str
    size: int

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every recipient's address: To, Cc, then the envelope's others."""
        return tuple(a.address for a in (*self.to, *self.cc, *self.bcc))

    @staticmethod
    def fields(raw: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": raw["ID"],
            "message_id": raw.get("MessageID") or "",
            "subject": raw.get("Subject") or "",
            "sender": _address(raw.get("From")),
            "to": _addresses(raw.get("To")),
            "cc": _addresses(raw.get("Cc")),
            "bcc": _addresses(raw.get("Bcc")),
            "reply_to": _addresses(raw.get("ReplyTo")),
            "username": raw.get("Username") or "",
            "size": int(raw.get("Size") or 0),
        }


@dataclass(frozen=True)
class Message(Summary):
    """One message whole: its parts as Mailpit decoded them, and every header."""

    text: str
    html: str
    return_path: str
    headers: Mapping[str, list[str]] = field(repr=False)

    def header(self, name: str) -> list[str]:
        """The values of header ``name`` (any case), in order; [] when absent."""
        wanted = name.lower()
        return [v for key, values in self.headers.items() if key.lower() == wanted for v in values]


@dataclass(frozen=True)
class Trigger:
    """Refuse with ``code`` (400 to 599) at ``probability`` percent (0 to 100)."""

    code: int = 451
    probability: int = 100

    def body(self) -> dict[str, int]:
        return {"ErrorCode": self.code, "Probability": self.probability}


@dataclass(frozen=True)
class Chaos:
    """Mailpit's triggers: ``sender`` fails ``MAIL FROM``, ``recipient`` fails each
    ``RCPT TO``, ``authentication`` fails ``AUTH`` (when AUTH is configured). ``None``
    (or probability 0): that stage never fails."""

    sender: Trigger | None = None
    recipient: Trigger | None = None
    authentication: Trigger | None = None

    def body(self) -> dict[str, dict[str, int]]:
        stages = {
            "Sender": self.sender,
            "Recipient": self.recipient,
            "Authentication": self.authentication,
        }
        return {name: t.body() for name, t in stages.items() if t is not None}

    @staticmethod
    def parse(raw: Mapping[str, Any]) -> Chaos:
        def trigger(name: str) -> Trigger | None:
            t = raw.get(name) or {}
            probability = int(t.get("Probability") or 0)
            return Trigger(int(t.get("ErrorCode") or 0), probability) if probability else None

        return Chaos(trigger("Sender"), trigger("Recipient"), trigger("Authentication"))


class MailpitAPI:
    """The REST API of the Mailpit at ``api_url`` (``http://host:port``)."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=f"{self.api_url}/api/v1", timeout=API_TIMEOUT_S)

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self._client() as client:
            answer = await client.request(method, path, **kwargs)
        answer.raise_for_status()
        return answer.json()

    async def count(self) -> int:
        """How many messages it holds."""
        page = await self._json("GET", "/messages", params={"limit": 1})
        return int(page["total"])

    async def messages(self) -> list[Summary]:
        """Every message it holds, newest first (each once, by ``id``)."""
        found: dict[str, Summary] = {}
        async with self._client() as client:
            start = 0
            while True:
                params = {"start": start, "limit": PAGE_SIZE}
                answer = await client.get("/messages", params=params)
                answer.raise_for_status()
                page = answer.json()["messages"] or []
                for raw in page:
                    found.setdefault(raw["ID"], Summary(**Summary.fields(raw)))
                if len(page) < PAGE_SIZE:
                    return list(found.values())
                start += len(page)

    async def message(self, message_id: str) -> Message:
        """One message whole (``message_id`` is Mailpit's ``id``, or ``"latest"``)."""
        async with self._client() as client:
            answer = await client.get(f"/message/{message_id}")
            answer.raise_for_status()
            raw = answer.json()
            headers = await client.get(f"/message/{raw['ID']}/headers")
            headers.raise_for_status()
        return Message(
            **Summary.fields(raw),
            text=raw.get("Text") or "",
            html=raw.get("HTML") or "",
            return_path=raw.get("ReturnPath") or "",
            headers=headers.json(),
        )

    async def raw(self, message_id: str) -> bytes:
        """The message's source as the SMTP client sent it."""
        async with self._client() as client:
            answer = await client.get(f"/message/{message_id}/raw")
        answer.raise_for_status()
        return answer.content

    async def delete_all(self) -> None:
        async with self._client() as client:
            answer = await client.request("DELETE", "/messages", json={"IDs": []})
        answer.raise_for_status()

    async def wait_for_count(self, count: int, timeout_s: float = 30.0) -> int:
        """Wait until it holds at least ``count`` messages; how many it holds then."""
        # Not helpers.wait_until: its imports (the broker's and the database's clients)
        # would make ``python -m clarion_devtools.smtpserver install`` take seconds.
        deadline = time.monotonic() + timeout_s
        while (held := await self.count()) < count:
            if time.monotonic() > deadline:
                wanted = f"{count} after {timeout_s}s"
                raise AssertionError(f"Mailpit holds {held} messages, not {wanted}")
            await asyncio.sleep(0.1)
        return held

    async def chaos(self) -> Chaos:
        return Chaos.parse(await self._json("GET", "/chaos"))

    async def set_chaos(self, chaos: Chaos) -> Chaos:
        """Replace every trigger (``Chaos()`` clears them); the triggers now in force."""
        return Chaos.parse(await self._json("PUT", "/chaos", json=chaos.body()))

    @asynccontextmanager
    async def refusing(self, chaos: Chaos | None = None) -> AsyncIterator[Chaos]:
        """SMTP refuses inside the block (default: every ``RCPT TO`` with 451, a
        temporary error), and accepts again after it, whatever the block raised."""
        in_force = await self.set_chaos(chaos or Chaos(recipient=Trigger()))
        try:
            yield in_force
        finally:
            await self.set_chaos(Chaos())
