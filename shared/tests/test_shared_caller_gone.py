"""A caller that gives up stops its request's work (``CallerGoneMiddleware`` in every
service's app, ``clarion_shared.caller``): over a real uvicorn server, since the
in-process transport never disconnects."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from clarion_devtools.helpers import wait_until
from clarion_shared.caller import caller_gone, stop_if_caller_gone, unless_caller_gone
from clarion_shared.errors import ErrorMapper
from clarion_shared.http import create_app
from clarion_shared.lifecycle import lifespan

STEPS = 50


class Work:
    """What the routes did, in order."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.never = asyncio.Event()

    async def wait_forever(self) -> None:
        self.events.append("call started")
        try:
            await self.never.wait()
        except asyncio.CancelledError:
            self.events.append("call cancelled")
            raise


def service(work: Work) -> FastAPI:
    app = create_app(
        "gone-test",
        "gone",
        lifespan("gone-test", []),
        errors=ErrorMapper(),
        readiness={},
        internal_token="t",
    )

    @app.get("/call")
    async def call() -> dict[str, bool]:
        await unless_caller_gone(work.wait_forever())
        work.events.append("call answered")
        return {"ok": True}

    @app.get("/steps")
    async def steps() -> dict[str, int]:
        done = 0
        try:
            for _ in range(STEPS):
                stop_if_caller_gone()
                await asyncio.sleep(0.05)  # one database operation, say
                done += 1
        finally:
            work.events.append(f"steps {done}")
        return {"done": done}

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int | bool]:
        body = await request.body()
        return {"size": len(body), "gone": caller_gone()}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"data: tick\n\n"
                    await asyncio.sleep(0.05)
            finally:
                work.events.append("stream ended")

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, Work]]:
    work = Work()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(service(work), log_config=None, lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[listener]))

    async def started() -> bool:
        return server.started

    try:
        await wait_until(started, timeout_s=10, interval_s=0.02, what="uvicorn started")
        yield f"http://127.0.0.1:{port}", work
    finally:
        server.should_exit = True
        await serving
        listener.close()


def seen(work: Work, event: str) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return any(e.startswith(event) for e in work.events)

    return probe


async def test_a_call_of_a_caller_that_gives_up_is_cancelled(served: tuple[str, Work]) -> None:
    base, work = served
    async with httpx.AsyncClient(base_url=base) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/call", timeout=0.3)
        await wait_until(seen(work, "call cancelled"), timeout_s=5, what="the call cancelled")
        assert work.events == ["call started", "call cancelled"]
        # The service goes on serving others.
        fine = await http.post("/echo", content=b"{}", timeout=5)
    assert fine.json() == {"size": 2, "gone": False}


async def test_a_loop_stops_at_its_next_safe_point(served: tuple[str, Work]) -> None:
    base, work = served
    async with httpx.AsyncClient(base_url=base) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/steps", timeout=0.3)
    await wait_until(seen(work, "steps"), timeout_s=5, what="the loop stopped")
    [event] = work.events
    done = int(event.split()[1])
    assert 1 <= done < STEPS


async def test_a_caller_that_waits_gets_its_answer_and_the_body_arrives_whole(
    served: tuple[str, Work],
) -> None:
    base, _ = served
    body = b"x" * (3 * 1024 * 1024)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        whole = await http.post("/echo", content=body)
        streamed = await http.post("/echo", content=chunks())
        steps = await http.get("/steps")
    assert whole.json() == streamed.json() == {"size": len(body), "gone": False}
    assert steps.json() == {"done": STEPS}


async def test_a_stream_ends_when_its_reader_leaves(served: tuple[str, Work]) -> None:
    base, work = served
    lines: list[str] = []
    async with (
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream("GET", "/stream") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            lines.append(line)
            if len(lines) == 3:
                break
    await wait_until(seen(work, "stream ended"), timeout_s=5, what="the stream ended")
    assert lines[0] == "data: tick"


async def test_outside_a_request_nothing_is_gone() -> None:
    stop_if_caller_gone()
    assert not caller_gone()
    assert await unless_caller_gone(asyncio.sleep(0, "done")) == "done"
