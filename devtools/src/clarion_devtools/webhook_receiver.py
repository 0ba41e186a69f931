"""A webhook receiver for tests and the benchmark: a small HTTP/1.1 server on asyncio
streams (keep-alive, no framework), fast enough never to be what a measurement measures.

In a test it runs in the test's event loop and keeps every request (path, headers,
body, time); ``answer`` decides each answer (status, delay) per path. The benchmark runs
it as a process of its own (``python -m clarion_devtools.webhook_receiver --port N``)
that keeps no bodies: ``GET /stats?path=/hook&since=<unix s>`` answers, for the requests
to ``path`` (all paths when absent) since ``since``, ``{count, unique, first_at,
last_at}``; ``--hang-path P --hang-s S`` makes every call to ``P`` wait ``S`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

Answer = Callable[[str], tuple[int, float]]  # path → (status, seconds to wait first)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


def always_ok(path: str) -> tuple[int, float]:
    return 200, 0.0


@dataclass
class Receiver:
    host: str = "127.0.0.1"
    port: int = 0
    answer: Answer = always_ok
    keep: bool = True
    received: list[Received] = field(default_factory=list)
    log: list[tuple[str, str, float]] = field(default_factory=list)  # path, webhook-id, at
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").split("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status, delay = self._record(method, path, headers, body)
                if delay:
                    await asyncio.sleep(delay)
                payload = self._stats(path) if path.startswith("/stats") else b"ok"
                writer.write(
                    f"HTTP/1.1 {status} X\r\ncontent-length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        except asyncio.CancelledError:
            pass  # stopped while an answer waited: the connection just closes
        finally:
            writer.close()

    def _record(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, float]:
        if method == "GET" and path.startswith("/stats"):
            return 200, 0.0
        now = time.time()
        self.log.append((path, headers.get("webhook-id", ""), now))
        if self.keep:
            self.received.append(Received(path, headers, body, now))
        return self.answer(path)

    def _stats(self, target: str) -> bytes:
        query = parse_qs(urlsplit(target).query)
        path = query.get("path", [None])[0]
        since = float(query.get("since", ["0"])[0])
        start = bisect.bisect_left(self.log, since, key=lambda entry: entry[2])
        found = [(p, i, at) for p, i, at in self.log[start:] if path in (None, p)]
        stats = {
            "count": len(found),
            "unique": len({i for _, i, _ in found}),
            "first_at": found[0][2] if found else None,
            "last_at": found[-1][2] if found else None,
        }
        return json.dumps(stats).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--hang-path", default="")
    parser.add_argument("--hang-s", type=float, default=0.0)
    args = parser.parse_args()

    def answer(path: str) -> tuple[int, float]:
        return 200, args.hang_s if path == args.hang_path else 0.0

    async def serve() -> None:
        receiver = Receiver(port=args.port, answer=answer, keep=False)
        await receiver.start()
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
