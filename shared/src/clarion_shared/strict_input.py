"""Strict input at the edge of every service: a request that is too large, or holds
what cannot be stored, is refused before a route runs.

:func:`install_strict_input` (called by ``http.create_app``) puts one ASGI middleware in
front of every route of every service, the gateway's proxies included, so a body is
checked before it is forwarded and again by its owner:

- A body over ``CLARION_MAX_BODY_BYTES`` (default 8 MiB, :class:`InputLimits`) is 413
  ``ERR_PAYLOAD_TOO_LARGE``: by its ``Content-Length`` before a byte is read, else by
  the bytes streamed (a JSON body is read here; any other is cut where the route reads
  it).
- A JSON body (``application/json``, ``application/*+json``, the types FastAPI parses)
  breaking a rule of :mod:`clarion_shared.strict_json` is 400 ``ERR_VALIDATION`` naming
  each field, in the same envelope as request validation.
- A path or query parameter holding U+0000 or a lone surrogate (``%00``) is 400 naming
  the parameter.

A body that is not JSON at all passes on untouched: the route answers it as FastAPI
does (400), and a proxy's owner does the same. An accepted body is replayed to the app
as the bytes it came as, in one message: a FastAPI route builds its own ``Request`` and
parses those bytes with plain ``json.loads``, and offers no public way to take a value
parsed here, so the check's cost is its own strict pass (see ``strict_json``), on top
of the parse the route always did.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import FastAPI
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError
from .strict_json import (
    MAX_PROBLEMS,
    UNSTORABLE_TEXT,
    Problem,
    Refused,
    loads_strict,
    path_segment,
    unstorable,
)

MAX_PAGE = 1_000_000
"""The highest ``page`` a list accepts: page times perPage stays far inside the integers
every database and JSON reader holds."""
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024


class InputLimits(BaseSettings):
    """Limits of every service's requests (one value for all, so that what the gateway
    accepts its peers accept too)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES,
        ge=1,
        validation_alias=AliasChoices("CLARION_MAX_BODY_BYTES", "max_body_bytes"),
        description="Largest request body accepted, in bytes (413 above); the default, "
        "8 MiB, holds a 10,000-receiver send with per-user variables.",
    )


def refusal(problems: list[Problem]) -> Response:
    """400 ``ERR_VALIDATION`` listing ``problems``, as request validation answers."""
    first = problems[0]
    where = f" ({first.field})" if first.field else ""
    return ApiError(
        400,
        "ERR_VALIDATION",
        "The request is not valid.",
        f"{first.message}{where}",
        [p.detail() for p in problems],
    ).response()


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "ERR_PAYLOAD_TOO_LARGE",
        "The request is too large.",
        f"Request bodies are limited to {limit} bytes (CLARION_MAX_BODY_BYTES).",
        {"maxBytes": limit},
    )


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI parses a body of this type as JSON."""
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def parameter_problems(scope: Scope, app: FastAPI) -> list[Problem]:
    """The path and query parameters of ``scope`` that hold unstorable text."""
    problems = []
    if unstorable(scope.get("path", "")):
        problems.append(Problem(_path_parameter(scope.get("path", ""), app), UNSTORABLE_TEXT))
    query = scope.get("query_string", b"")
    if query:
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if unstorable(key) or unstorable(value):
                problems.append(Problem(path_segment(key), UNSTORABLE_TEXT))
    return problems[:MAX_PROBLEMS]


def _path_parameter(path: str, app: FastAPI) -> str:
    """The name of the path parameter that holds unstorable text, as the documented
    operation that ``path`` addresses calls it; ``path`` when none does."""
    try:
        templates = list(app.openapi().get("paths", {}))
    except Exception:  # a document that cannot be built names nothing
        templates = []
    for template in templates:
        matched = compile_path(template)[0].match(path)
        for name, value in (matched.groupdict() if matched else {}).items():
            if unstorable(value):
                return name
    return "path"


class StrictInputMiddleware:
    """The checks above, before the app sees the request."""

    def __init__(self, app: ASGIApp, limits: InputLimits, api: FastAPI) -> None:
        self.app = app
        self.limit = limits.max_body_bytes
        self.api = api  # the app whose operations name the path parameters

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problems = parameter_problems(scope, self.api)
        if problems:
            await refusal(problems)(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await too_large(self.limit).response()(scope, receive, send)
            return
        if not _is_json(_header(scope, b"content-type")):
            await self.app(scope, self._capped(receive), send)
            return
        try:
            body = await self._read(receive)
        except _TooLarge:
            await too_large(self.limit).response()(scope, receive, send)
            return
        except _Disconnected:
            return  # nobody to answer
        if body:
            try:
                loads_strict(body)
            except Refused as exc:
                await refusal(exc.problems)(scope, receive, send)
                return
            except ValueError:
                pass  # not JSON: the route says so in its own words
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _capped(self, receive: Receive) -> Receive:
        """``receive``, stopping a body that is not JSON once it passes the limit (the
        route that reads it answers 413)."""
        size = 0

        async def capped() -> Message:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            if size > self.limit:
                error = too_large(self.limit)
                raise HTTPException(413, error.dev_message)
            return message

        return capped


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` in one message, then whatever comes next (the
    client's disconnect)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def install_strict_input(app: FastAPI, limits: InputLimits | None = None) -> None:
    """Every request to ``app`` passes the checks above; ``limits`` from the
    environment when not given."""
    app.add_middleware(StrictInputMiddleware, limits=limits or InputLimits(), api=app)
