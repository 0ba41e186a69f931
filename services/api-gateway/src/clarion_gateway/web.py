"""HTTP plumbing the resources' routes share: authentication, pages, idempotent answers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from clarion_shared.cursor import ListParams, list_params
from clarion_shared.errors import ErrorMapper
from clarion_shared.ids import now

from .apps.service import KeyResolver, authenticate, check_admin
from .idempotency.domain import StoredResponse, fingerprint
from .idempotency.service import Claim, IdempotencyRepository, run_once

_api_key = APIKeyHeader(
    name="apikey", auto_error=False, description="The app's API key (POST /admin/apps)."
)
_admin_bearer = HTTPBearer(auto_error=False, description="CLARION_GATEWAY_ADMIN_TOKEN")


@dataclass(frozen=True)
class Auth:
    """The two ways in, as FastAPI dependencies.

    ``require_app`` answers the app (tenant) of a ``/v3`` request, else 401
    ``ERR_UNAUTHORIZED``; ``require_admin`` lets the operator's bearer token through.
    """

    require_app: Callable[..., Awaitable[str]]
    require_admin: Callable[..., Awaitable[None]]


def auth(keys: KeyResolver, admin_token: str) -> Auth:
    async def require_app(
        apikey: Annotated[str | None, Depends(_api_key)],
        appid: Annotated[str | None, Header(description="Optional; must be the key's app.")] = None,
    ) -> str:
        return await authenticate(keys, apikey, appid)

    async def require_admin(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)],
    ) -> None:
        check_admin(credentials.credentials if credentials else None, admin_token)

    return Auth(require_app, require_admin)


ListParam = Annotated[ListParams, Depends(list_params)]
"""A list's paging parameters (page or cursor mode: ``clarion_shared.cursor``)."""

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Same key and body within 24 h: the first response, nothing done "
        "again; another body: 409.",
    ),
]


def json_response(
    model: BaseModel, status: int = 200, exclude_none: bool = False
) -> StoredResponse:
    return StoredResponse(
        status, model.model_dump_json(by_alias=True, exclude_none=exclude_none).encode()
    )


@dataclass(frozen=True)
class Responder:
    """Answers what a route's ``call`` returns, once per ``Idempotency-Key`` when given.

    An error the call raises is stored as ``errors`` renders it, so a retry with the
    key answers the same envelope.
    """

    idempotency: IdempotencyRepository
    errors: ErrorMapper
    ttl_s: int
    lease_s: int

    async def respond(
        self,
        request: Request,
        app_id: str,
        idempotency_key: str | None,
        call: Callable[[], Awaitable[StoredResponse]],
    ) -> Response:
        if idempotency_key is None:
            result = await call()
            replayed = False
        else:
            claim = Claim(
                app_id=app_id,
                key=idempotency_key,
                fingerprint=fingerprint(request.method, request.url.path, await request.body()),
                now=now(),
                ttl_s=self.ttl_s,
                lease_s=self.lease_s,
            )
            outcome = await run_once(self.idempotency, claim, call, self._stored)
            result, replayed = outcome.response, outcome.replayed
        response = Response(result.body, status_code=result.status, media_type="application/json")
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return response

    def _stored(self, exc: Exception) -> StoredResponse | None:
        error = self.errors.api_error(exc)
        if error is None:
            return None
        return StoredResponse(error.status, json.dumps(error.body()).encode())
