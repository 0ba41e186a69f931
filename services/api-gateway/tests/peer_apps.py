"""Peers of the gateway for ``test_gateway_peers``, each served by uvicorn in a process
of its own, as the real services are:
``python peer_apps.py <directory|directory-on-mongo|dispatcher|dropping> <port>``.

A process of its own matters: a peer in the test's process (or a thread of it) closes
its connections before the gateway's client gets to send on them again, which hides
the race the tests are about.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import replace

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from clarion_directory.app import Adapters, Settings, build, compose
from clarion_directory.testing import InMemoryUserRepository
from clarion_directory.users.domain import User
from clarion_shared.errors import ErrorMapper, install_error_handlers
from clarion_shared.logging import configure_logging
from clarion_shared.runner import serve


class FailingUsers(InMemoryUserRepository):
    """Reading the user ``boom`` fails with an error nobody maps: a 500."""

    async def get(self, app_id: str, uid: str) -> User | None:
        if uid == "boom":
            raise RuntimeError("the database went away")
        return await super().get(app_id, uid)


def directory() -> FastAPI:
    """The user-directory's own app on a fake repository (nothing to start).

    Its consumers join the broker under topics of their own: with the default (empty)
    prefix they joined the consumer groups of a ``make run`` on the same machine and
    answered its uid lookups from this empty fake ("user not found")."""
    settings = Settings(topic_prefix="test.peer-apps.")
    return compose(settings, replace(Adapters.connect(settings), users=FailingUsers()))


def directory_on_mongo() -> FastAPI:
    """The user-directory as it runs, on the database and broker its environment names
    (``MONGODB_URL``, ``KAFKA_BOOTSTRAP_SERVERS``, ``CLARION_DIRECTORY_*``)."""
    return build(Settings())


def dispatcher() -> FastAPI:
    """A dispatcher whose feed routes all answer 200 (the stream: one event, then ends)."""
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.api_route("/internal/apps/{app_id}/feed/{rest:path}", methods=["GET", "POST", "DELETE"])
    async def feed(app_id: str, rest: str) -> Response:
        if rest.endswith("/stream"):
            events = iter([b"event: feed_item\ndata: {}\n\n"])
            return StreamingResponse(events, media_type="text/event-stream")
        return JSONResponse({"data": {"feed": rest}})

    return app


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
    # As the services' own entry points do. Unconfigured, structlog renders each logged
    # exception with rich (a dev dependency) and every frame's locals: a second or more
    # per error, which the tests that make peers fail hundreds of times cannot afford.
    configure_logging(f"peer-{kind}", json=True)
    kinds = {
        "directory": directory,
        "directory-on-mongo": directory_on_mongo,
        "dispatcher": dispatcher,
        "dropping": dropping,
    }
    serve(kinds[kind](), "127.0.0.1", port)
