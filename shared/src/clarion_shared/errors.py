"""Errors: raised where a rule lives, turned into the API's envelope where a request enters.

Domain code and use cases raise :class:`DomainError` subclasses: plain exceptions with a
message for end users, an optional message for developers and details. They know
nothing of HTTP. Each service declares one :data:`ErrorMapping` (its ``errors`` module)
from its error classes to :class:`ApiError`, the edge's representation, and
:func:`install_error_handlers` answers every request with it::

    {"error": {"code": "ERR_...", "message": ..., "devMessage": ..., "details": ...,
               "source": "clarion"}}

Request validation is 400 ``ERR_VALIDATION`` (never FastAPI's 422); anything unmapped
is 500 ``ERR_INTERNAL`` without a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from .logging import get_logger

log = get_logger(__name__)

_STATUS_CODES = {
    400: "ERR_BAD_REQUEST",
    401: "ERR_UNAUTHORIZED",
    403: "ERR_FORBIDDEN",
    404: "ERR_NOT_FOUND",
    405: "ERR_METHOD_NOT_ALLOWED",
    409: "ERR_CONFLICT",
    413: "ERR_PAYLOAD_TOO_LARGE",
    415: "ERR_UNSUPPORTED_MEDIA_TYPE",
    429: "ERR_TOO_MANY_REQUESTS",
    503: "ERR_UNAVAILABLE",
    504: "ERR_TIMEOUT",
}


# ---------------------------------------------------------------- domain errors


class DomainError(Exception):
    """A rule refused: ``message`` is safe for end users, ``dev_message`` helps the
    developer fix the call, ``details`` is JSON (the fields or items at fault)."""

    def __init__(
        self, message: str, *, dev_message: str | None = None, details: Any = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.dev_message = dev_message or message
        self.details = details


class Invalid(DomainError):
    """The input breaks a rule (maps to 400 ``ERR_VALIDATION``)."""


class NotFound(DomainError):
    """The thing does not exist, or belongs to another app (404 ``ERR_NOT_FOUND``)."""

    def __init__(self, what: str, *, dev_message: str | None = None, details: Any = None) -> None:
        super().__init__(f"{what} not found.", dev_message=dev_message, details=details)


class Conflict(DomainError):
    """The state of the thing refuses the change (409 ``ERR_CONFLICT``)."""


class Forbidden(DomainError):
    """Never allowed for this caller (403 ``ERR_FORBIDDEN``)."""


class Unauthorized(DomainError):
    """The caller is not who it claims (401 ``ERR_UNAUTHORIZED``)."""

    def __init__(self, dev_message: str) -> None:
        super().__init__("Authentication failed.", dev_message=dev_message)


class Unavailable(DomainError):
    """Something this needs is down; a retry may succeed (503 ``ERR_UNAVAILABLE``)."""


class TimedOut(DomainError):
    """No answer in time; the work may still complete (504 ``ERR_TIMEOUT``)."""


# ---------------------------------------------------------------- the edge


class ApiError(Exception):
    """An error as the client sees it: HTTP status, API code, envelope. Edge only."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        dev_message: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.dev_message = dev_message or message
        self.details = details
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return envelope(self.code, self.message, self.dev_message, self.details)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


ErrorMapping = Mapping[type[Exception], Callable[[Any], ApiError]]
"""Error class → how the client sees it. A subclass without an entry takes its
nearest mapped base's."""


def answer(status: int, code: str, retry_after_s: int | None = None) -> Callable[[Any], ApiError]:
    """The mapping entry of a :class:`DomainError` class: its messages and details as
    they are, under ``status`` and ``code``."""
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None

    def to_api(exc: DomainError) -> ApiError:
        return ApiError(status, code, exc.message, exc.dev_message, exc.details, headers)

    return to_api


COMMON_ERRORS: ErrorMapping = {
    Invalid: answer(400, "ERR_VALIDATION"),
    Unauthorized: answer(401, "ERR_UNAUTHORIZED"),
    Forbidden: answer(403, "ERR_FORBIDDEN"),
    NotFound: answer(404, "ERR_NOT_FOUND"),
    Conflict: answer(409, "ERR_CONFLICT"),
    Unavailable: answer(503, "ERR_UNAVAILABLE", retry_after_s=1),
    TimedOut: answer(504, "ERR_TIMEOUT"),
}


class ErrorMapper:
    """A service's mapping on top of :data:`COMMON_ERRORS`."""

    def __init__(self, mapping: ErrorMapping | None = None) -> None:
        self._mapping: dict[type[Exception], Callable[[Any], ApiError]] = {
            **COMMON_ERRORS,
            **(mapping or {}),
        }

    @property
    def classes(self) -> tuple[type[Exception], ...]:
        return (ApiError, *self._mapping)

    def api_error(self, exc: Exception) -> ApiError | None:
        """How ``exc`` is shown to the client, or None when it is not mapped (a bug)."""
        if isinstance(exc, ApiError):
            return exc
        for cls in type(exc).__mro__:
            to_api = self._mapping.get(cls)
            if to_api is not None:
                return to_api(exc)
        return None


def envelope(code: str, message: str, dev_message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "devMessage": dev_message,
        "source": "clarion",
    }
    if details is not None:
        error["details"] = details
    return {"error": error}


def internal_error() -> ApiError:
    return ApiError(500, "ERR_INTERNAL", "Something went wrong.", "Internal server error.")


def validation_details(errors: list[Any]) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        out.append({"field": ".".join(loc) or None, "message": err.get("msg", "invalid")})
    return out


def install_error_handlers(app: FastAPI, mapper: ErrorMapper) -> None:
    """Every error leaves ``app`` in the envelope: mapped errors as their mapping says,
    request validation as 400, Starlette's HTTP errors with their status, the rest 500."""

    async def request_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError | ValidationError)
        details = validation_details(list(exc.errors()))
        first = details[0] if details else {"field": None, "message": "invalid"}
        where = f" ({first['field']})" if first["field"] else ""
        return JSONResponse(
            envelope(
                "ERR_VALIDATION",
                "The request is not valid.",
                f"{first['message']}{where}",
                details,
            ),
            status_code=400,
        )

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _STATUS_CODES.get(exc.status_code, "ERR_BAD_REQUEST")
        message = str(exc.detail) if exc.detail else code
        return JSONResponse(
            envelope(code, message, message),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def mapped_error(_: Request, exc: Exception) -> JSONResponse:
        return (mapper.api_error(exc) or internal_error()).response()

    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("http.unhandled_error", error=repr(exc))
        return internal_error().response()

    app.add_exception_handler(RequestValidationError, request_validation)
    app.add_exception_handler(ValidationError, request_validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
    # Each mapped class is registered on its own: Starlette picks the handler of the
    # nearest registered base, and only a handler for ``Exception`` re-raises.
    for cls in mapper.classes:
        app.add_exception_handler(cls, mapped_error)
    app.add_exception_handler(Exception, internal)
