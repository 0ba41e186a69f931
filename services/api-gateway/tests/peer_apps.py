"""Peers of the gateway for ``test_gateway_peers``, each served by uvicorn in a process
of its own, as the real services are: ``python peer_apps.py <directory|dropping> <port>``.

A process of its own matters: a peer in the test's process (or a thread of it) closes
its connections before the gateway's client gets to send on them again, which hides
the race the tests are about.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import replace

from fastapi import FastAPI, Request

from clarion_directory.app import Adapters, Settings, compose
from clarion_directory.testing import InMemoryUserRepository
from clarion_directory.users.domain import User
from clarion_shared.errors import ErrorMapper, install_error_handlers
from clarion_shared.runner import serve


class FailingUsers(InMemoryUserRepository):
    """Reading the user ``boom`` fails with an error nobody maps: a 500."""

    async def get(self, app_id: str, uid: str) -> User | None:
        if uid == "boom":
            raise RuntimeError("the database went away")
        return await super().get(app_id, uid)


def directory() -> FastAPI:
    """The user-directory's own app on a fake repository (nothing to start)."""
    settings = Settings()
    return compose(settings, replace(Adapters.connect(settings), users=FailingUsers()))


def dropping() -> FastAPI:
    """A peer that drops its connection after every error, as every service did before
    issue 6 (Starlette answers 500, then re-raises; uvicorn then closes the connection).
    ``/internal/seen`` counts the echo requests it handled, by method."""
    app = FastAPI()
    install_error_handlers(app, ErrorMapper())
    seen: Counter[str] = Counter()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/internal/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.api_route("/internal/echo", methods=["GET", "POST"])
    async def echo(request: Request) -> dict[str, str]:
        seen[request.method] += 1
        return {"data": request.method}

    @app.get("/internal/seen")
    async def seen_so_far() -> dict[str, int]:
        return dict(seen)

    return app


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    serve({"directory": directory, "dropping": dropping}[kind](), "127.0.0.1", port)
