"""HTTP plumbing every service shares: app factory, health, metrics, correlation ids.

``GET /healthz`` answers while the process runs. ``GET /readyz`` answers 200 only when
every readiness check the service registered passes (Kafka, database, peers). Both and
``GET /metrics`` are open; every path under ``/internal`` needs the services' shared
secret (``InternalTokenMiddleware``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .api import document_errors
from .caller import CallerGone, gone_scope
from .errors import ErrorMapper, envelope, install_error_handlers, internal_error
from .ids import new_id
from .logging import get_correlation_id, get_logger, set_correlation_id
from .strict_input import install_strict_input

ReadinessCheck = Callable[[], Awaitable[bool]]
CORRELATION_HTTP_HEADER = "x-correlation-id"
INTERNAL_TOKEN_HEADER = "x-clarion-internal-token"
INTERNAL_PREFIX = "/internal"

log = get_logger(__name__)

REQUESTS = Counter("clarion_http_requests_total", "HTTP requests", ["service", "method", "status"])
LATENCY = Histogram("clarion_http_request_seconds", "HTTP request latency", ["service"])


class CorrelationIdMiddleware(BaseHTTPMiddleware):
    """Takes ``X-Correlation-Id`` from the request or makes one; echoes it back."""

    def __init__(self, app: Any, service: str) -> None:
        super().__init__(app)
        self.service = service

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        cid = request.headers.get(CORRELATION_HTTP_HEADER) or new_id("cid_")
        set_correlation_id(cid)
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except CallerGone:
            response = Response(status_code=499)  # nobody reads it; counted in metrics
        except Exception as exc:
            # Answered here, not by Starlette's outermost handler: that one re-raises to
            # the server after answering, and uvicorn then drops the keep-alive
            # connection, so the caller's next request on it (another client's, through
            # the gateway's pool) is reset (issue 6).
            log.exception("http.unhandled_error", error=repr(exc))
            response = internal_error().response()
        finally:
            set_correlation_id(None)
        LATENCY.labels(self.service).observe(time.perf_counter() - started)
        REQUESTS.labels(self.service, request.method, str(response.status_code)).inc()
        response.headers[CORRELATION_HTTP_HEADER] = cid
        return response


class InternalTokenMiddleware:
    """Every request under ``/internal`` carries the services' shared secret in
    ``X-Clarion-Internal-Token``, compared in constant time; else 401 ``ERR_UNAUTHORIZED``.

    The internal APIs trust the gateway's authentication of the client, so nothing but
    the gateway may call them. Other paths (health, readiness, metrics) pass.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise ValueError("the internal token must not be empty")
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or not _is_internal(scope["path"]) or self._accepts(scope):
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await _unauthorized(scope, receive, send)

    def _accepts(self, scope: Scope) -> bool:
        name = INTERNAL_TOKEN_HEADER.encode()
        given = next((v for k, v in scope["headers"] if k.lower() == name), b"")
        return hmac.compare_digest(given, self._token)


class CallerGoneMiddleware:
    """Tells a request's work that its client went away before the answer.

    Uvicorn lets a handler run on after its client disconnected, so a caller that gave
    up (the gateway after its peer timeout, a client's own timeout) left the work going,
    and retries piled more of it on the database (issue 6, finding 8). Here a pump task
    reads the request's messages and hands them on one at a time (the body keeps its
    back-pressure); a disconnect before the response is complete sets the request's
    "gone" event, which ``unless_caller_gone`` (peer calls) and ``stop_if_caller_gone``
    (between database operations) act on. The handler is not cancelled outright: see
    ``unless_caller_gone`` for why.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        inbox: asyncio.Queue[Message] = asyncio.Queue(maxsize=1)
        gone = asyncio.Event()
        completed = False

        async def tracked_send(message: Message) -> None:
            nonlocal completed
            if message["type"] == "http.response.body" and not message.get("more_body"):
                completed = True
            await send(message)

        async def pump() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    if not completed:
                        gone.set()
                        log.info("http.caller_gone", path=scope.get("path", ""))
                    with contextlib.suppress(asyncio.QueueFull):
                        inbox.put_nowait(message)  # for a stream that listens for it
                    return
                await inbox.put(message)

        pumping = asyncio.create_task(pump())
        try:
            with gone_scope(gone):
                await self.app(scope, inbox.get, tracked_send)
        except CallerGone:
            return  # nobody is left to answer
        finally:
            pumping.cancel()
            await asyncio.gather(pumping, return_exceptions=True)


def _is_internal(path: str) -> bool:
    return path == INTERNAL_PREFIX or path.startswith(f"{INTERNAL_PREFIX}/")


async def _unauthorized(scope: Scope, receive: Receive, send: Send) -> None:
    body = envelope(
        "ERR_UNAUTHORIZED",
        "Authentication is required.",
        f"Internal APIs need the services' shared secret in {INTERNAL_TOKEN_HEADER} "
        "(CLARION_INTERNAL_TOKEN).",
    )
    await JSONResponse(body, status_code=401)(scope, receive, send)


def internal_headers(token: str) -> dict[str, str]:
    """The headers a caller of another service's ``/internal`` API sends."""
    return {INTERNAL_TOKEN_HEADER: token}


def create_app(
    service: str,
    title: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    *,
    errors: ErrorMapper,
    readiness: Mapping[str, ReadinessCheck],
    internal_token: str,
    description: str = "",
    docs: bool = True,
) -> FastAPI:
    """A service's FastAPI app: envelopes for ``errors``, ``/healthz``, ``/readyz`` over
    ``readiness`` (200 when every check passes), ``/metrics``, and ``/internal/...``
    behind ``internal_token`` (the service's ``settings.internal_token``).

    No slash redirects: a redirect's ``Location`` names this process's own address,
    which the gateway must never pass to a client; ``/users/`` is simply not found.
    """
    app = FastAPI(
        title=title,
        description=description,
        version="1.0.0",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        redirect_slashes=False,
    )
    app.state.readiness = dict(readiness)
    install_strict_input(app)  # inside the correlation id: its answers carry one
    # Outside the strict input: a caller without the token gets no body parsed.
    app.add_middleware(InternalTokenMiddleware, token=internal_token)
    app.add_middleware(CorrelationIdMiddleware, service=service)
    # Outermost: a caller that is gone cancels everything the request started.
    app.add_middleware(CallerGoneMiddleware)
    install_error_handlers(app, errors)
    _document_errors(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks: dict[str, ReadinessCheck] = app.state.readiness
        results = await asyncio.gather(*(_safe(check) for check in checks.values()))
        status = dict(zip(checks.keys(), results, strict=True))
        ready = bool(checks) and all(results)
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "service": service, "checks": status},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def _document_errors(app: FastAPI) -> None:
    """``/openapi.json`` as FastAPI generates it, with the errors the app really sends
    (:func:`clarion_shared.api.document_errors`: no 422, 500 and 413 in the envelope)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _safe(check: ReadinessCheck) -> bool:
    try:
        return await asyncio.wait_for(check(), 3.0)
    except Exception:
        return False


def correlation_headers() -> dict[str, str]:
    cid = get_correlation_id()
    return {CORRELATION_HTTP_HEADER: cid} if cid else {}
