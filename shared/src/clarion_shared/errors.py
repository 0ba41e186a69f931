"""The API error envelope and the FastAPI handlers that produce it.

Every error leaves a service as::

    {"error": {"code": "ERR_...", "message": ..., "devMessage": ..., "details": ...,
               "source": "clarion"}}

Request validation is 400 ``ERR_VALIDATION`` (never FastAPI's 422); unexpected errors
are 500 ``ERR_INTERNAL`` without a stack trace.
"""

from __future__ import annotations

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


class ApiError(Exception):
    """An error the client should see, with its HTTP status and API code."""

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


def not_found(what: str, code: str = "ERR_NOT_FOUND") -> ApiError:
    return ApiError(404, code, f"{what} not found.")


def validation_details(errors: list[Any]) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        out.append({"field": ".".join(loc) or None, "message": err.get("msg", "invalid")})
    return out


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

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

    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("http.unhandled_error", error=repr(exc))
        return JSONResponse(
            envelope("ERR_INTERNAL", "Something went wrong.", "Internal server error."),
            status_code=500,
        )

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, request_validation)
    app.add_exception_handler(ValidationError, request_validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, internal)
