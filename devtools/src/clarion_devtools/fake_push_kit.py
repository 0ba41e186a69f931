"""What the local push servers (``fake_push``) are made of: test keys and certificates
made at run time, how a server is told to answer a token, and a hypercorn server run in
the caller's event loop (HTTP/1.1 and HTTP/2 over TLS, ALPN) around a bare ASGI app.

Nothing here is a mock of a client: the servers speak the providers' HTTP contracts
on real sockets, and keep what they received for the tests to read.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import socket
import ssl
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypercorn.asyncio import serve
from hypercorn.config import Config
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

# ---------------------------------------------------------------- keys and certificates


def _pem(key: PrivateKeyTypes) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def service_account(client_email: str, token_uri: str, project_id: str) -> dict[str, str]:
    """A Google service-account key file, with a new RSA 2048 key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": uuid.uuid4().hex,
        "private_key": _pem(key),
        "client_email": client_email,
        "client_id": str(uuid.uuid4().int)[:21],
        "token_uri": token_uri,
    }


def apns_auth_key() -> str:
    """An APNs auth key as Apple hands it out (.p8: PKCS#8 PEM, EC P-256)."""
    return _pem(ec.generate_private_key(ec.SECP256R1()))


def public_key(private_pem: str) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    """The public half of an RSA or EC private key (what a provider verifies with)."""
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError("not an RSA or EC private key")
    return key.public_key()


@dataclass(frozen=True)
class Tls:
    """A self-signed certificate for 127.0.0.1 and localhost, in files for hypercorn."""

    certfile: Path
    keyfile: Path
    cert_pem: str

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate only."""
        return ssl.create_default_context(cadata=self.cert_pem)


def self_signed(directory: Path) -> Tls:
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "clarion fake push")])
    now = dt.datetime.now(dt.UTC)
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_text(cert_pem)
    keyfile.write_text(_pem(key))
    keyfile.chmod(0o600)
    return Tls(certfile, keyfile, cert_pem)


# ---------------------------------------------------------------- answers

Kind = Literal["ok", "invalid", "unregistered", "rate_limited", "error", "unavailable"]


@dataclass(frozen=True)
class Answer:
    """How a server answers one token: ``kind`` (the provider's own words for each are
    the server's business), ``retry_after`` (the header's value, with ``rate_limited``
    and the 5xx kinds), ``delay_s`` (wait this long first: a slow provider)."""

    kind: Kind = "ok"
    retry_after: str | None = None
    delay_s: float = 0.0


@dataclass(frozen=True)
class Request:
    """One HTTP request as a server saw it (header names in lower case)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    http_version: str
    client: tuple[str, int]


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, value: object, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(
            status,
            json.dumps(value).encode(),
            {"content-type": "application/json; charset=UTF-8", **(headers or {})},
        )


Handler = Callable[[Request], Awaitable[Reply]]


@dataclass(frozen=True)
class Accepted:
    token: str
    body: Mapping[str, Any]
    request: Request


@dataclass
class Recorder:
    """What every fake keeps: its answers per token, every request, what it accepted."""

    answers: dict[str, Answer] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    accepted: list[Accepted] = field(default_factory=list)

    def stats(self) -> Reply:
        unique = {(a.token, _delivery_id(a.body)) for a in self.accepted}
        counts = {"requests": len(self.requests), "accepted": len(self.accepted)}
        return Reply.json(200, {**counts, "unique": len(unique)})


def _delivery_id(body: Mapping[str, Any]) -> str:
    data = body.get("message", {}).get("data", body) if "message" in body else body
    return str(data.get("deliveryId", "")) if isinstance(data, dict) else ""


async def misbehave(answer: Answer) -> tuple[int, str, dict[str, str] | None] | None:
    """Waits ``delay_s``, then the (status, word, headers) of a non-ok answer."""
    if answer.delay_s:
        await asyncio.sleep(answer.delay_s)
    headers = {"retry-after": answer.retry_after} if answer.retry_after else None
    status = {
        "invalid": 400,
        "unregistered": 410,
        "rate_limited": 429,
        "error": 500,
        "unavailable": 503,
    }.get(answer.kind)
    return None if status is None else (status, answer.kind, headers)


# ---------------------------------------------------------------- the server

STOP_WAIT_S = 1.0  # for the server to stop, then for it to be cancelled


def _ended(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        with contextlib.suppress(BaseException):
            task.result()  # hypercorn may end by a cancelled gather or a TLS timeout


class Server:
    """A hypercorn server in the running event loop, around ``handler``: binds
    127.0.0.1 (a free port unless ``port``), TLS when ``tls`` (ALPN ``alpn``), and
    counts the connections (client address and port) and HTTP versions it saw."""

    def __init__(
        self,
        handler: Handler,
        *,
        tls: Tls | None = None,
        alpn: tuple[str, ...] = ("h2", "http/1.1"),
        port: int = 0,
    ) -> None:
        self._handler = handler
        self._tls = tls
        self._alpn = alpn
        self.port = port
        self.connections: set[tuple[str, int]] = set()
        self.http_versions: set[str] = set()
        self._stop = asyncio.Event()
        self._started = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(512)
        self.port = sock.getsockname()[1]
        config = Config()
        config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns the socket from here
        config.alpn_protocols = list(self._alpn)
        config.graceful_timeout = 1.0
        config.keep_alive_timeout = 120.0
        # Not hypercorn's 1,000 requests per connection: its GOAWAY mid-burst makes
        # httpcore fail the streams the server had already answered, so a client sees a
        # provider that took messages and said it did not, and sends them again (README,
        # Delivery channels: what can be sent twice). Exactly-once tests measure the
        # worker, not that ambiguity.
        config.keep_alive_max_requests = 10_000_000
        config.accesslog = None
        if self._tls is not None:
            config.certfile, config.keyfile = str(self._tls.certfile), str(self._tls.keyfile)
        self._task = asyncio.create_task(serve(self._app, config, shutdown_trigger=self._stop.wait))
        started = asyncio.create_task(self._started.wait())
        await asyncio.wait({self._task, started}, timeout=10, return_when="FIRST_COMPLETED")
        started.cancel()
        if self._task.done():
            self._task.result()  # raises what stopped it
        if not self._started.is_set():
            raise RuntimeError("the fake push server did not start within 10 s")

    async def stop(self) -> None:
        """Stop listening and close the connections, without waiting for TLS goodbyes.

        A client that keeps its connection open (a worker's pool) leaves hypercorn
        waiting for the TLS shutdown of each, up to asyncio's 30 s, even cancelled:
        that was 10 s of every test's teardown. What is still closing then ends on its
        own, its outcome read (``_ended``)."""
        if self._task is None:
            return
        task, self._task = self._task, None
        self._stop.set()
        done, _ = await asyncio.wait({task}, timeout=STOP_WAIT_S)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_WAIT_S)
        task.add_done_callback(_ended)

    async def _app(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        http = cast(dict[str, Any], scope)
        body = bytearray()
        while True:
            event = cast(dict[str, Any], await receive())
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        client = tuple(http.get("client") or ("", 0))
        self.connections.add((str(client[0]), int(client[1])))
        self.http_versions.add(http["http_version"])
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in http["headers"]}
        request = Request(
            http["method"], http["path"], headers, bytes(body), http["http_version"], client
        )
        reply = await self._handler(request)
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(k.encode(), v.encode()) for k, v in reply.headers.items()],
                "trailers": False,
            }
        )
        await send({"type": "http.response.body", "body": reply.body, "more_body": False})

    async def _lifespan(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
                self._started.set()
            elif event["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
