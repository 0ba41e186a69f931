"""The HTTP call of a delivery attempt, against real sockets on 127.0.0.1: signatures a
receiver verifies (with the ``standardwebhooks`` package), Basic Auth, what each kind of
answer comes to, no redirects, capped bodies, timeouts, and addresses refused before a
connection is made."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from standardwebhooks.webhooks import Webhook

from clarion_shared.outbound_http import retry_after
from clarion_shared.webhook_signing import new_secret
from clarion_webhooks.deliveries.sender import RESPONSE_CAP, Outcome, Sender

BIG = 10 * 1024 * 1024


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    hang: bool = False  # read the request, never answer
    stall: bool = False  # announce more body than is sent, then wait


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


class Receiver:
    """A tiny HTTP/1.1 server: answers each path as ``replies`` says (200 "ok" by
    default), keeps every request and counts the connections made to it."""

    def __init__(self, replies: dict[str, Reply] | None = None) -> None:
        self.replies = replies or {}
        self.seen: list[Seen] = []
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [seen.path for seen in self.seen]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while not reader.at_eof():
                head = await reader.readuntil(b"\r\n\r\n")
                line, *fields = head.decode("latin-1").split("\r\n")[:-2]
                headers = {k.lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                path = line.split(" ")[1]
                self.seen.append(Seen(path, headers, body))
                reply = self.replies.get(path, Reply())
                if reply.hang:
                    await reader.read()  # until the client gives up and closes
                    return
                await self._answer(writer, reply)
                if reply.stall:
                    await reader.read()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, reply: Reply) -> None:
        length = len(reply.body) + (100 if reply.stall else 0)
        headers = {"content-length": str(length), **reply.headers}
        lines = [f"HTTP/1.1 {reply.status} Whatever"] + [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        writer.write(reply.body)
        await writer.drain()


@asynccontextmanager
async def started(sender: Sender) -> AsyncIterator[Sender]:
    await sender.start()
    try:
        yield sender
    finally:
        await sender.stop()


@pytest.fixture
async def sender() -> AsyncIterator[Sender]:
    async with started(Sender(allow_private=True, timeout_s=5.0)) as client:
        yield client


async def post(
    sender: Sender,
    url: str,
    *,
    secrets: tuple[str, ...] | None = None,
    basic_auth: tuple[str, str] | None = None,
    body: bytes = b'{"trigger":"after_feed_item_sent"}',
    msg_id: str = "msg_test",
) -> Outcome:
    chosen = secrets if secrets is not None else (new_secret(),)
    return await sender.send(url, msg_id, body, chosen, basic_auth, int(time.time()))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_receiver_verifies_the_signature_with_one_secret_and_with_two(
    sender: Sender,
) -> None:
    old, new = new_secret(), new_secret()
    body = b'{"trigger":"after_batch_completed","data":{"id":"bat_1"}}'
    async with Receiver() as receiver:
        one = await post(sender, receiver.url(), secrets=(new,), body=body, msg_id="msg_one")
        two = await post(sender, receiver.url(), secrets=(new, old), body=body, msg_id="msg_two")
    assert one.ok
    assert two.ok
    first, second = receiver.seen
    assert first.body == body
    assert first.headers["webhook-id"] == "msg_one"
    assert first.headers["content-type"] == "application/json"
    assert first.headers["user-agent"] == "Clarion-Webhooks/1"
    Webhook(new).verify(first.body, first.headers, json_parse=False)
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(old).verify(first.body, first.headers, json_parse=False)
    assert second.headers["webhook-signature"].count("v1,") == 2
    Webhook(new).verify(second.body, second.headers, json_parse=False)
    Webhook(old).verify(second.body, second.headers, json_parse=False)


async def test_basic_auth_is_sent_only_when_given(sender: Sender) -> None:
    async with Receiver() as receiver:
        await post(sender, receiver.url(), basic_auth=("ops", "s3cr:t é"))
        await post(sender, receiver.url())
    with_auth, without = receiver.seen
    scheme, _, credentials = with_auth.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(credentials).decode() == "ops:s3cr:t é"
    assert "authorization" not in without.headers


async def test_each_answer_comes_to_its_outcome(sender: Sender) -> None:
    replies = {
        "/created": Reply(201, body=b'{"received":true}'),
        "/broken": Reply(500, body=b"boom"),
        "/gone": Reply(410),
        "/empty": Reply(204, body=b""),
    }
    async with Receiver(replies) as receiver:
        created = await post(sender, receiver.url("/created"))
        broken = await post(sender, receiver.url("/broken"))
        gone = await post(sender, receiver.url("/gone"))
        empty = await post(sender, receiver.url("/empty"))
    assert (created.ok, created.status_code, created.response) == (True, 201, '{"received":true}')
    assert created.error is None
    assert created.duration_ms >= 0
    assert (broken.ok, broken.gone, broken.status_code, broken.response) == (
        False,
        False,
        500,
        "boom",
    )
    assert (gone.ok, gone.gone, gone.status_code) == (False, True, 410)
    assert (empty.ok, empty.response) == (True, "")
    assert all(o.retry_after_s is None for o in (created, broken, gone, empty))


async def test_retry_after_of_a_429_or_503_in_seconds_or_as_a_date(sender: Sender) -> None:
    now = int(time.time())
    later = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    replies = {
        "/seconds": Reply(429, {"retry-after": "7"}),
        "/date": Reply(429, {"retry-after": later}),
        "/unavailable": Reply(503, {"retry-after": "12"}),
        "/nonsense": Reply(429, {"retry-after": "soon"}),
        "/not-asked": Reply(500, {"retry-after": "7"}),
    }
    async with Receiver(replies) as receiver:
        outcomes = {
            path: await sender.send(receiver.url(path), "msg_r", b"{}", [new_secret()], None, now)
            for path in replies
        }
    assert {path: o.retry_after_s for path, o in outcomes.items()} == {
        "/seconds": 7.0,
        "/date": 30.0,
        "/unavailable": 12.0,
        "/nonsense": None,
        "/not-asked": None,
    }
    assert outcomes["/seconds"].status_code == 429


def test_retry_after_parsing() -> None:
    assert retry_after(None, 100) is None
    assert retry_after(" 120 ", 100) == 120.0
    assert retry_after("-5", 100) is None
    assert retry_after("1.5", 100) is None
    assert retry_after("²", 100) is None  # a digit to str.isdigit, not to HTTP
    assert retry_after("Thu, 01 Jan 1970 00:02:00 GMT", 100) == 20.0
    assert retry_after("Thu, 01 Jan 1970 00:00:10 GMT", 100) == 0.0  # in the past
    assert retry_after("Thu, 01 Jan 1970 00:02:00 -0000", 100) == 20.0


async def test_a_redirect_is_an_answer_not_followed(sender: Sender) -> None:
    replies = {"/moved": Reply(302, {"location": "/elsewhere"}, b"")}
    async with Receiver(replies) as receiver:
        outcome = await post(sender, receiver.url("/moved"))
    assert (outcome.status_code, outcome.ok, outcome.error) == (302, False, None)
    assert receiver.paths() == ["/moved"]


async def test_a_huge_body_is_cut_and_its_connection_dropped_not_drained(
    sender: Sender,
) -> None:
    replies = {"/big": Reply(200, body=b"x" * BIG)}
    async with Receiver(replies) as receiver:
        assert (await post(sender, receiver.url("/small"))).ok
        assert (await post(sender, receiver.url("/small"))).ok
        # A short body read to its end leaves the connection to the next call.
        assert receiver.connections == 1
        big = await post(sender, receiver.url("/big"))
        after = await post(sender, receiver.url("/small"))
    assert big.ok
    assert big.response == "x" * RESPONSE_CAP
    assert after.ok
    assert after.response == "ok"
    # Draining the 10 MB would have kept the connection; it was closed instead.
    assert receiver.connections == 2


async def test_an_endpoint_that_never_answers_times_out() -> None:
    async with (
        started(Sender(allow_private=True, timeout_s=0.5)) as sender,
        Receiver({"/hang": Reply(hang=True)}) as receiver,
    ):
        outcome = await post(sender, receiver.url("/hang"))
    assert receiver.paths() == ["/hang"]
    assert (outcome.status_code, outcome.error, outcome.response) == (None, "timeout", None)
    assert not outcome.ok
    assert 450 <= outcome.duration_ms < 5000


async def test_a_body_that_stalls_after_the_status_keeps_the_answer() -> None:
    async with (
        started(Sender(allow_private=True, timeout_s=0.5)) as sender,
        Receiver({"/stall": Reply(200, body=b"partial", stall=True)}) as receiver,
    ):
        stalled = await post(sender, receiver.url("/stall"))
        after = await post(sender, receiver.url("/next"))
    # The endpoint said 200: the call is answered, whatever its body then does.
    assert (stalled.status_code, stalled.error, stalled.response) == (200, None, "partial")
    assert stalled.ok
    assert after.ok
    assert receiver.connections == 2  # the stalled connection was not reused


async def test_a_closed_port_is_a_connection_error(sender: Sender) -> None:
    outcome = await post(sender, f"http://127.0.0.1:{closed_port()}/hook")
    assert outcome.status_code is None
    assert outcome.error is not None
    assert outcome.error.startswith("connection error: ")
    assert outcome.response is None
    assert not outcome.ok


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/hook", "not a url", "http:///no-host", "https://user:pw@example.com/"],
)
async def test_what_is_not_an_http_url_is_refused_unsent(sender: Sender, url: str) -> None:
    outcome = await post(sender, url)
    assert outcome.error is not None
    assert outcome.error.startswith("invalid url: ")
    assert outcome.status_code is None


async def test_private_addresses_are_refused_before_any_connection() -> None:
    async with started(Sender()) as sender, Receiver() as receiver:
        literal = await post(sender, receiver.url())
        mapped = await post(sender, receiver.url(host="[::ffff:127.0.0.1]"))
        named = await post(sender, receiver.url(host="localhost"))
    assert literal.error == "refused address: 127.0.0.1 (loopback)"
    assert mapped.error == "refused address: ::ffff:7f00:1 (loopback)"  # as yarl writes it
    assert named.error is not None
    assert named.error.startswith("refused address: ")  # 127.0.0.1 or ::1, by the resolver
    assert named.error.endswith("(loopback)")
    assert all(o.status_code is None and not o.ok for o in (literal, mapped, named))
    assert receiver.connections == 0


async def test_allowing_private_addresses_reaches_local_receivers(sender: Sender) -> None:
    async with Receiver() as receiver:
        by_address = await post(sender, receiver.url())
        by_name = await post(sender, receiver.url(host="localhost"))
    assert by_address.ok
    assert by_name.ok


async def test_a_sender_not_started_says_so() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        await post(Sender(), "http://127.0.0.1:1/")


async def test_a_cookie_an_endpoint_sets_is_never_sent_back(sender: Sender) -> None:
    replies = {"/sets": Reply(200, headers={"set-cookie": "session=tenant-a; Path=/"})}
    async with Receiver(replies) as receiver:
        # By name: aiohttp's jar never keeps cookies of an IP address anyway.
        named = receiver.url("/sets").replace("127.0.0.1", "localhost")
        await post(sender, named)
        await post(sender, named.replace("/sets", "/other"))
    assert [s.path for s in receiver.seen] == ["/sets", "/other"]
    assert "cookie" not in receiver.seen[1].headers
