"""Server-sent events on the wire (the HTML living standard's ``text/event-stream``).

Events are encoded one at a time; :func:`with_heartbeat` puts a comment between them
while the source is quiet, so that proxies keep the connection, without cancelling the
source's pending step (a live stream's subscription lives in it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
"""Response headers of an event stream: never cached, never buffered by a proxy."""


def stream_media(events: tuple[str, ...], example: str) -> dict[str, object]:
    """The OpenAPI media type object of an event stream naming ``events``.

    ``itemSchema`` describes one event (OpenAPI 3.2's way, which schemathesis checks each
    event against); a ``schema`` beside it would be read as the whole stream's.
    """
    return {
        "itemSchema": {
            "type": "object",
            "required": ["event", "data"],
            "properties": {
                "event": {"type": "string", "enum": list(events)},
                "id": {"type": "string"},
                "data": {"type": "string", "contentMediaType": "application/json"},
            },
        },
        "example": example,
    }


def encode_event(event: str, data: str, event_id: str | None = None) -> str:
    """One event; every line of ``data`` becomes a ``data:`` line."""
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines += [f"data: {line}" for line in data.split("\n")]
    return "\n".join(lines) + "\n\n"


def comment(text: str) -> str:
    """A comment line: clients ignore it, proxies see traffic."""
    return f": {text}\n\n"


async def with_heartbeat(events: AsyncIterator[str], heartbeat_s: float) -> AsyncIterator[str]:
    """``events`` as they come, and ``: keep-alive`` after every ``heartbeat_s`` of
    silence. Ends when ``events`` ends; closing this closes ``events``."""
    step: asyncio.Future[str] | None = None
    try:
        while True:
            if step is None:
                step = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({step}, timeout=heartbeat_s)
            if not done:
                yield comment("keep-alive")
                continue
            try:
                item = step.result()
            except StopAsyncIteration:
                return
            step = None
            yield item
    finally:
        if step is not None and not step.done():
            step.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await step
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
