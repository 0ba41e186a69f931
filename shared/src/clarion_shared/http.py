"""HTTP plumbing every service shares: app factory, health, metrics, correlation ids.

``GET /healthz`` answers while the process runs. ``GET /readyz`` answers 200 only when
every readiness check the service registered passes (Kafka, database, peers).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from .errors import ErrorMapper, install_error_handlers
from .ids import new_id
from .logging import get_correlation_id, set_correlation_id

ReadinessCheck = Callable[[], Awaitable[bool]]
CORRELATION_HTTP_HEADER = "x-correlation-id"

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
        finally:
            set_correlation_id(None)
        LATENCY.labels(self.service).observe(time.perf_counter() - started)
        REQUESTS.labels(self.service, request.method, str(response.status_code)).inc()
        response.headers[CORRELATION_HTTP_HEADER] = cid
        return response


def create_app(
    service: str,
    title: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    *,
    errors: ErrorMapper,
    readiness: Mapping[str, ReadinessCheck],
    description: str = "",
    docs: bool = True,
) -> FastAPI:
    """A service's FastAPI app: envelopes for ``errors``, ``/healthz``, ``/readyz`` over
    ``readiness`` (200 when every check passes), ``/metrics``."""
    app = FastAPI(
        title=title,
        description=description,
        version="1.0.0",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.readiness = dict(readiness)
    app.add_middleware(CorrelationIdMiddleware, service=service)
    install_error_handlers(app, errors)

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


async def _safe(check: ReadinessCheck) -> bool:
    try:
        return await asyncio.wait_for(check(), 3.0)
    except Exception:
        return False


def correlation_headers() -> dict[str, str]:
    cid = get_correlation_id()
    return {CORRELATION_HTTP_HEADER: cid} if cid else {}
