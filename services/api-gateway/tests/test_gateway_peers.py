"""The gateway's client of the internal services (issue 6): what it sends, what it
passes back, and how it keeps one client's failure away from the others.

The first tests use the harness's mock peers. The others run real peers under uvicorn
on 127.0.0.1, each in a process of its own (``peer_apps.py``): the user-directory
itself (on a fake repository, or as it runs on the real database and broker), a
dispatcher's feed routes, and a peer that drops its connection after every error.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from pymongo import AsyncMongoClient

from clarion_devtools.helpers import random_ref
from clarion_gateway.app import compose
from clarion_gateway.proxies.peers import Forward, Peers, PeerUnavailable
from clarion_gateway.testing import (
    AUTH,
    FakeRequester,
    Harness,
    MemoryStore,
    RecordingCommands,
    all_sent,
    fake_adapters,
    make_settings,
)
from clarion_shared.contracts.replies import SendResult
from clarion_shared.contracts.sends import SendNotification
from clarion_shared.http import INTERNAL_TOKEN_HEADER
from clarion_shared.settings import DEV_INTERNAL_TOKEN, InfraSettings

# ------------------------------------------------------------------ mock peers


async def test_the_peer_gets_the_internal_token_and_a_client_cannot_set_it(
    harness: Harness,
) -> None:
    harness.peer = lambda request: httpx.Response(200, json={"data": []})
    response = await harness.client.get(
        "/v3/users", headers={**AUTH, INTERNAL_TOKEN_HEADER: "forged"}
    )
    assert response.status_code == 200
    [sent] = harness.peer_requests
    assert sent.headers.get_list(INTERNAL_TOKEN_HEADER) == [make_settings().internal_token]


async def test_a_peer_refusing_the_token_is_503_not_the_clients_401(harness: Harness) -> None:
    harness.peer = lambda request: httpx.Response(401, json={"error": {"code": "ERR_UNAUTHORIZED"}})
    response = await harness.client.get("/v3/users", headers=AUTH)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "ERR_UNAVAILABLE"


async def test_no_peer_redirect_or_internal_header_reaches_the_client(harness: Harness) -> None:
    internal = "http://127.0.0.1:8083/internal/apps/clarion-dev/users"
    harness.peer = lambda request: httpx.Response(
        307,
        headers={
            "location": internal,
            "content-location": internal,
            "link": f"<{internal}>; rel=next",
            "server": "uvicorn",
            "allow": "GET",
            "cache-control": "no-store",
        },
    )
    response = await harness.client.get("/v3/users/", headers=AUTH)
    assert "location" not in response.headers
    assert not any("8083" in value or "/internal" in value for value in response.headers.values())
    assert (response.headers["allow"], response.headers["cache-control"]) == ("GET", "no-store")


async def test_internal_paths_of_the_gateway_need_the_token(harness: Harness) -> None:
    response = await harness.client.get("/internal/apps/clarion-dev/users")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "ERR_UNAUTHORIZED"


def _reset(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadError("connection reset by peer", request=request)


def _refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def _slow(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("slow", request=request)


@pytest.mark.parametrize(
    ("method", "path", "failure", "sent", "status"),
    [
        # The connection died under an idempotent request: once more, on a new one.
        ("GET", "/v3/users/u1", _reset, 2, 200),
        ("PUT", "/v3/users/u1", _reset, 2, 200),
        ("DELETE", "/v3/users/u1", _reset, 2, 200),
        # A POST that may have reached the peer is not repeated.
        ("POST", "/v3/users", _reset, 1, 503),
        # No connection was made: nothing reached the peer, any method goes again.
        ("POST", "/v3/users", _refused, 2, 200),
        # A timeout may be work in progress: never repeated.
        ("GET", "/v3/users/u1", _slow, 1, 504),
    ],
)
async def test_a_failed_connection_is_retried_once_when_that_is_safe(
    harness: Harness,
    method: str,
    path: str,
    failure: Callable[[httpx.Request], httpx.Response],
    sent: int,
    status: int,
) -> None:
    def peer(request: httpx.Request) -> httpx.Response:
        if len(harness.peer_requests) == 1:
            return failure(request)
        return httpx.Response(200, json={"data": {}})

    harness.peer = peer
    body = {"uid": "u1", "name": "U"} if method in ("POST", "PUT") else None
    response = await harness.client.request(method, path, json=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert len(harness.peer_requests) == sent


async def test_a_peer_down_for_good_is_503_after_one_retry(harness: Harness) -> None:
    harness.peer = _refused
    response = await harness.client.get("/v3/users", headers=AUTH)
    assert response.status_code == 503
    assert len(harness.peer_requests) == 2


# ------------------------------------------------------------------ real peers

PEER_APPS = Path(__file__).with_name("peer_apps.py")


class Served:
    """A peer of ``peer_apps.py`` under uvicorn on 127.0.0.1, in a process of its own."""

    def __init__(self, kind: str, env: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self._env = dict(env) if env is not None else None
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port: int = probe.getsockname()[1]
        probe.close()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(PEER_APPS), self.kind, str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self._env,
        )
        deadline = time.monotonic() + 30
        while True:
            assert self._process.poll() is None, f"the {self.kind} peer exited"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"the {self.kind} peer did not start"
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(sig)
            self._process.wait(15)


@contextmanager
def served(kind: str, env: Mapping[str, str] | None = None) -> Iterator[Served]:
    server = Served(kind, env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@asynccontextmanager
async def gateway(directory_url: str, **urls: str) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway on fakes, with its real peer client to ``directory_url`` (and the
    other peers' ``urls``: ``dispatcher_url=...``)."""
    settings = make_settings(directory_url=directory_url, **urls)
    commands = RecordingCommands()

    async def respond(command: SendNotification) -> SendResult | None:
        return all_sent(command)

    adapters = fake_adapters(settings, MemoryStore(), commands, FakeRequester(commands, respond))
    peers = Peers.connect(
        settings.peer_urls(), settings.peer_timeout_s, internal_token=settings.internal_token
    )
    app = compose(settings, replace(adapters, peers=peers))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client,
    ):
        yield client


async def test_a_trailing_slash_through_the_gateway_is_no_redirect() -> None:
    with served("directory") as users:
        async with gateway(users.url) as client:
            assert (await client.get("/v3/users", headers=AUTH)).status_code == 200
            for path in ("/v3/users/", "/v3/users/?page=1", "/v3/campaigns/channels/"):
                response = await client.get(path, headers=AUTH)
                assert response.status_code == 404, (path, response.text)
                assert response.json()["error"]["code"] == "ERR_NOT_FOUND"
                assert "location" not in response.headers
                assert str(users.port) not in response.text


async def test_upstream_errors_under_concurrent_load_leave_other_clients_unaffected() -> None:
    """One client keeps making the directory fail (500); right after each failure, and
    all along from eight other clients, creates, reads and updates must succeed."""
    answers: Counter[tuple[str, int]] = Counter()

    async def failing_client(n: int) -> None:
        for i in range(n):
            response = await client.get("/v3/users/boom", headers=AUTH)
            assert response.status_code == 500
            assert response.json()["error"]["code"] == "ERR_INTERNAL"
            # The next request on the gateway's pool: a create, which is never retried.
            uid = f"after-{n}-{i}-{time.monotonic_ns()}"
            created = await client.post("/v3/users", json={"uid": uid, "name": uid}, headers=AUTH)
            answers["create after a 500", created.status_code] += 1

    async def other_client(k: int) -> None:
        for i in range(10):
            uid = f"other-{k}-{i}"
            created = await client.post("/v3/users", json={"uid": uid, "name": uid}, headers=AUTH)
            answers["create", created.status_code] += 1
            read = await client.get(f"/v3/users/{uid}", headers=AUTH)
            answers["read", read.status_code] += 1
            updated = await client.put(f"/v3/users/{uid}", json={"name": "N"}, headers=AUTH)
            answers["update", updated.status_code] += 1

    with served("directory") as users:
        async with gateway(users.url) as client:
            await failing_client(20)  # alone: each create takes the connection of the 500
            await asyncio.gather(
                failing_client(20), failing_client(20), *(other_client(k) for k in range(8))
            )
    assert answers == {
        ("create after a 500", 200): 60,
        ("create", 200): 80,
        ("read", 200): 80,
        ("update", 200): 80,
    }


BOOM = Forward("GET", "/internal/boom", "", b"", ())


def echo(method: str) -> Forward:
    return Forward(method, "/internal/echo", "", b"{}" if method == "POST" else b"", ())


async def seen(peers: Peers) -> dict[str, int]:
    answer = await peers.forward("dispatcher", Forward("GET", "/internal/seen", "", b"", ()))
    counts: dict[str, int] = json.loads(answer.body)
    return counts


async def test_requests_after_a_dropped_connection_recover_without_doing_anything_twice() -> None:
    answers: Counter[tuple[str, int]] = Counter()
    with served("dropping") as peer:
        peers = Peers.connect({"dispatcher": peer.url}, 5.0, internal_token=DEV_INTERNAL_TOKEN)
        try:
            for method in ("GET", "POST") * 30:
                assert (await peers.forward("dispatcher", BOOM)).status == 500
                try:
                    answers[method, (await peers.forward("dispatcher", echo(method))).status] += 1
                except PeerUnavailable:
                    answers[method, 503] += 1
            handled = await seen(peers)
        finally:
            await peers.stop()
    # Every read is answered: a reset connection is replaced for an idempotent request.
    assert answers["GET", 200] == 30
    assert handled["GET"] == 30
    # A POST is answered or refused, never sent twice: the peer saw each answered one once.
    assert answers["POST", 200] + answers["POST", 503] == 30
    assert handled.get("POST", 0) == answers["POST", 200]


async def test_a_crashed_and_restarted_peer_is_reached_again() -> None:
    server = Served("dropping")
    server.start()
    peers = Peers.connect({"dispatcher": server.url}, 5.0, internal_token=DEV_INTERNAL_TOKEN)
    try:
        answers = await asyncio.gather(
            *(peers.forward("dispatcher", echo("GET")) for _ in range(8))
        )
        assert {answer.status for answer in answers} == {200}
        server.stop(signal.SIGKILL)  # its pooled connections die with it
        server.start()
        answers = await asyncio.gather(
            *(peers.forward("dispatcher", echo("GET")) for _ in range(8))
        )
        assert {answer.status for answer in answers} == {200}
        assert (await seen(peers))["GET"] == 8
    finally:
        await peers.stop()
        server.stop()


FEED = "/v3/campaigns/notification-feed"
FEED_ROUTES = [  # list, unread count, one item, read, delivered, delete, stream
    *[("GET", f"{FEED}{rest}") for rest in ("", "/unread-count", "/fi_1", "/stream")],
    *[("POST", f"{FEED}/fi_1/{mark}") for mark in ("read", "delivered")],
    ("DELETE", f"{FEED}/fi_1"),
]


@pytest.mark.integration
async def test_onbehalfof_must_name_a_user_of_the_real_directory(
    infra_settings: InfraSettings, mongo_client: AsyncMongoClient[dict[str, object]]
) -> None:
    """Issue 6, item 8, against the user-directory on FerretDB and Kafka: an unknown uid
    is 404 ERR_USER_NOT_FOUND on every feed route, a known one reaches the dispatcher,
    a deleted one is unknown again, and a directory that is down is 503."""
    db_name = random_ref("db_dir").replace("-", "_")
    env = {
        **os.environ,
        "MONGODB_URL": infra_settings.mongodb_url,
        "KAFKA_BOOTSTRAP_SERVERS": infra_settings.kafka_bootstrap_servers,
        "CLARION_TOPIC_PREFIX": infra_settings.topic_prefix,
        "CLARION_DIRECTORY_DB_NAME": db_name,
        "CLARION_DIRECTORY_GROUP_ID": random_ref("user-directory-test"),
        "CLARION_DIRECTORY_AUTO_OFFSET_RESET": "latest",
    }
    known, ghost = random_ref("known"), random_ref("ghost")
    answers: Counter[tuple[str, str, str, int, str]] = Counter()

    async def ask_all(who: str, label: str) -> None:
        for method, path in FEED_ROUTES:
            answer = await client.request(method, path, headers={**AUTH, "onbehalfof": who})
            code = answer.json()["error"]["code"] if answer.status_code >= 400 else ""
            answers[label, method, path, answer.status_code, code] += 1

    try:
        with served("directory-on-mongo", env) as users, served("dispatcher") as feeds:
            async with gateway(users.url, dispatcher_url=feeds.url) as client:
                body = {"uid": known, "name": "Known"}
                assert (await client.post("/v3/users", json=body, headers=AUTH)).status_code == 200
                await ask_all(ghost, "unknown")
                await ask_all(known, "known")
                assert (await client.delete(f"/v3/users/{known}", headers=AUTH)).status_code == 200
                await ask_all(known, "deleted")
                users.stop()
                await ask_all(known, "directory down")
    finally:
        await mongo_client.drop_database(db_name)
    assert answers == {
        **{("unknown", *r, 404, "ERR_USER_NOT_FOUND"): 1 for r in FEED_ROUTES},
        # A deleted feed item is 204 (API.md); the dispatcher here answers 200.
        **{("known", *r, 204 if r[0] == "DELETE" else 200, ""): 1 for r in FEED_ROUTES},
        **{("deleted", *r, 404, "ERR_USER_NOT_FOUND"): 1 for r in FEED_ROUTES},
        **{("directory down", *r, 503, "ERR_UNAVAILABLE"): 1 for r in FEED_ROUTES},
    }
