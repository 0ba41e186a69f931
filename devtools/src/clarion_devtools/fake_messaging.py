"""Local stand-ins for the messaging providers, each implementing its HTTP contract as
documented, for the delivery tests (one server, four contracts under four prefixes;
the checks and answer bodies are in :mod:`.fake_messaging_contracts`):

- ``/twilio``: Twilio's Messages API, ``POST /2010-04-01/Accounts/{sid}/Messages.json``:
  HTTP Basic Auth (401, error 20003), the account in the path (404, 20404), a
  form-encoded ``To``, ``From`` or ``MessagingServiceSid``, ``Body`` (21604, 21603,
  21602, 21211 not E.164, 21606 a sender not of the account, 21617 over 1,600
  characters); 201 with a Message resource (``sid`` ``SM…``, ``status`` ``queued``).
- ``/graph``: WhatsApp Cloud API, ``POST /{version}/{phoneNumberId}/messages``:
  ``Authorization: Bearer`` (401, 190), the phone-number id (400, 100), the JSON shape
  (``messaging_product``, ``recipient_type``, ``to``, ``text.body`` or ``template`` with
  ``name``, ``language.code`` and as many body parameters as the template has: 100,
  132001, 132000); 200 ``{messaging_product, contacts: [{input, wa_id}], messages:
  [{id: "wamid.…"}]}``. Errors in the Graph API's envelope (``error.code``...).
- ``/sms``: a generic SMS endpoint: ``Authorization: Bearer``, JSON ``{to, text,
  idempotencyKey}`` and an ``Idempotency-Key`` header equal to it; a repeated key
  answers the first message's id again (``Received.replay``) without a new message.
- ``/custom/...``: a custom channel's receiver, verifying the Standard Webhooks
  signature with the ``standardwebhooks`` package (401 when it does not verify).

Every request is kept (``received``), answered or refused. ``plan(kind, recipient,
*replies)`` makes the next calls for a recipient (a number, ``+`` or not; a uid for
``custom``) answer as told, in order: an error with the provider's code, a 429 with
``Retry-After``, a 5xx, a slow answer (``delay_s``); ``default[kind]`` answers every
recipient without a plan. Runs in the test's event loop (uvicorn on a socket it binds),
or as a process of its own: ``python -m clarion_devtools.fake_messaging --port N``
(``GET /_stats``: per kind, requests, accepted messages and distinct recipients).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import socket
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .fake_messaging_contracts import (
    E164,
    JsonDict,
    Problem,
    TwilioAccount,
    WhatsAppAccount,
    graph_error,
    twilio_error,
    whatsapp_sent,
)
from .helpers import wait_until

__all__ = ["FakeMessaging", "Received", "Reply", "TwilioAccount", "WhatsAppAccount"]


@dataclass(frozen=True)
class Reply:
    """A planned answer. ``status`` 0 is the provider's normal success."""

    status: int = 0
    code: int | None = None
    message: str = "planned answer"
    retry_after: str | None = None
    delay_s: float = 0.0


@dataclass(frozen=True)
class Received:
    kind: str  # twilio | whatsapp | sms | custom
    recipient: str
    fields: JsonDict  # the form or the JSON body, parsed
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int  # what the server answered
    peer: str  # the client's address and port: one per connection
    replay: bool = False

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300 and not self.replay


def _key(recipient: str) -> str:
    return recipient.removeprefix("+")


class FakeMessaging:
    def __init__(
        self,
        *,
        twilio: TwilioAccount | None = None,
        whatsapp: WhatsAppAccount | None = None,
        sms_token: str = "sms-token",
        custom_secret: str | None = None,
    ) -> None:
        self.twilio = twilio or TwilioAccount()
        self.whatsapp = whatsapp or WhatsAppAccount()
        self.sms_token = sms_token
        self.custom_secret = custom_secret
        self.received: list[Received] = []
        self.default: dict[str, Reply] = {}
        self._plans: dict[tuple[str, str], deque[Reply]] = defaultdict(deque)
        self._sms_ids: dict[str, str] = {}
        self._server: uvicorn.Server | None = None
        self._serving: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self.port = 0

    # -- use --------------------------------------------------------------------------

    def plan(self, kind: str, recipient: str, *replies: Reply) -> None:
        self._plans[(kind, _key(recipient))].extend(replies)

    def of(self, kind: str) -> list[Received]:
        return [r for r in self.received if r.kind == kind]

    def accepted(self, kind: str) -> list[Received]:
        return [r for r in self.of(kind) if r.accepted]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def twilio_base_url(self) -> str:
        return f"{self.base}/twilio"

    @property
    def graph_base_url(self) -> str:
        return f"{self.base}/graph"

    @property
    def sms_url(self) -> str:
        return f"{self.base}/sms"

    def custom_url(self, path: str = "/hook") -> str:
        return f"{self.base}/custom{path}"

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> FakeMessaging:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(
            self.app(), log_config=None, lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._serving = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        server = self._server

        async def started() -> bool:
            return server.started

        await wait_until(started, timeout_s=10, interval_s=0.02, what="fake messaging started")

    async def stop(self) -> None:
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._serving, 5)
        if self._socket is not None:
            self._socket.close()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(
                    "/twilio/2010-04-01/Accounts/{sid}/Messages.json",
                    self._twilio,
                    methods=["POST"],
                ),
                Route("/graph/{version}/{phone_id}/messages", self._whatsapp, methods=["POST"]),
                Route("/sms", self._sms, methods=["POST"]),
                Route("/custom/{rest:path}", self._custom, methods=["POST"]),
                Route("/_stats", self._stats, methods=["GET"]),
            ]
        )

    async def _stats(self, request: Request) -> JSONResponse:
        """Per kind: requests, accepted messages, distinct recipients accepted."""
        stats = {
            kind: {
                "requests": len(self.of(kind)),
                "accepted": len(self.accepted(kind)),
                "unique": len({r.recipient for r in self.accepted(kind)}),
            }
            for kind in ("twilio", "whatsapp", "sms", "custom")
        }
        return JSONResponse(stats)

    # -- the answer of a valid request ------------------------------------------------

    def _record(
        self, kind: str, recipient: str, fields: JsonDict, request: Request, body: bytes
    ) -> Callable[[int, bool], None]:
        peer = f"{request.client.host}:{request.client.port}" if request.client else ""
        headers = {k.lower(): v for k, v in request.headers.items()}

        def record(status: int, replay: bool = False) -> None:
            self.received.append(
                Received(kind, recipient, fields, headers, body, status, peer, replay)
            )

        return record

    async def _answer(
        self,
        kind: str,
        recipient: str,
        record: Callable[[int, bool], None],
        success: Callable[[], tuple[int, JsonDict]],
        error: Callable[[Reply], JsonDict],
    ) -> JSONResponse:
        plan = self._plans.get((kind, _key(recipient)))
        reply = plan.popleft() if plan else self.default.get(kind, Reply())
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        status, payload = success() if reply.status == 0 else (reply.status, error(reply))
        headers = {"retry-after": reply.retry_after} if reply.retry_after else {}
        record(status, False)
        return JSONResponse(payload, status, headers)

    # -- Twilio -------------------------------------------------------------------------

    async def _twilio(self, request: Request) -> JSONResponse:
        body = await request.body()
        form_type = request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        )
        form = dict(parse_qsl(body.decode(errors="replace"))) if form_type else {}
        record = self._record("twilio", form.get("To", ""), dict(form), request, body)
        problem: Problem | None
        if not self.twilio.authorized(request.headers.get("authorization")):
            problem = 401, 20003, "Authenticate"
        elif request.path_params["sid"] != self.twilio.sid:
            problem = 404, 20404, f"The requested resource {request.url.path} was not found"
        else:
            problem = self.twilio.problem(form)
        if problem is not None:
            status, code, message = problem
            record(status, False)
            extra = {"www-authenticate": 'Basic realm="Twilio API"'} if status == 401 else {}
            return JSONResponse(twilio_error(status, code, message), status, extra)
        return await self._answer(
            "twilio",
            form["To"],
            record,
            lambda: (201, self.twilio.message(form)),
            lambda r: twilio_error(r.status, r.code or 20500, r.message),
        )

    # -- WhatsApp Cloud API -------------------------------------------------------------

    async def _whatsapp(self, request: Request) -> JSONResponse:
        body = await request.body()
        try:
            message = await request.json() if body else {}
        except ValueError:
            message = {}
        if not isinstance(message, dict):
            message = {}
        to = str(message.get("to", ""))
        record = self._record("whatsapp", to, message, request, body)
        params = request.path_params
        problem = self.whatsapp.problem(
            request.headers.get("authorization"), params["version"], params["phone_id"], message
        )
        if problem is not None:
            status, code, words = problem
            record(status, False)
            return JSONResponse(graph_error(code, words), status)
        return await self._answer(
            "whatsapp",
            to,
            record,
            lambda: (200, whatsapp_sent(message)),
            lambda r: graph_error(r.code or 131000, r.message),
        )

    # -- a generic SMS endpoint and a custom channel's receiver -------------------------

    async def _sms(self, request: Request) -> JSONResponse:
        body = await request.body()
        try:
            message = await request.json()
        except ValueError:
            message = {}
        message = message if isinstance(message, dict) else {}
        to, key = str(message.get("to", "")), request.headers.get("idempotency-key", "")
        record = self._record("sms", to, message, request, body)
        if request.headers.get("authorization") != f"Bearer {self.sms_token}":
            record(401, False)
            return JSONResponse({"error": "unauthorized"}, 401)
        if not key or key != message.get("idempotencyKey"):
            record(400, False)
            return JSONResponse({"error": "Idempotency-Key must equal idempotencyKey"}, 400)
        if not E164.fullmatch(to) or not isinstance(message.get("text"), str):
            record(400, False)
            return JSONResponse({"error": "to must be E.164 and text a string"}, 400)
        if key in self._sms_ids:
            record(200, True)
            return JSONResponse({"id": self._sms_ids[key]}, 200)

        def sent() -> tuple[int, JsonDict]:
            self._sms_ids[key] = "sms_" + secrets.token_hex(8)
            return 200, {"id": self._sms_ids[key]}

        return await self._answer("sms", to, record, sent, lambda r: {"error": r.message})

    async def _custom(self, request: Request) -> JSONResponse:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            if self.custom_secret is None:
                raise WebhookVerificationError("no secret configured")
            payload = Webhook(self.custom_secret).verify(body, headers)
        except (WebhookVerificationError, ValueError) as exc:
            self._record("custom", "", {}, request, body)(401, False)
            return JSONResponse({"error": f"signature: {exc}"}, 401)
        payload = payload if isinstance(payload, dict) else {}
        receiver = str(payload.get("receiver", ""))
        record = self._record("custom", receiver, payload, request, body)
        return await self._answer(
            "custom", receiver, record, lambda: (200, {"ok": True}), lambda r: {"error": r.message}
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Local Twilio, WhatsApp Cloud API, SMS "
        "and custom-channel endpoints (GET /_stats counts)."
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--custom-secret", default=None, help="whsec_… the receiver verifies")
    args = parser.parse_args()

    async def serve() -> None:
        fake = FakeMessaging(custom_secret=args.custom_secret)
        config = uvicorn.Config(fake.app(), host="127.0.0.1", port=args.port, log_config=None)
        await uvicorn.Server(config).serve()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
