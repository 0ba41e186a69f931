"""Dependencies the routes share: the components, authentication, idempotent responses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, cast

from fastapi import Depends, Header, Query, Request, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from clarion_shared.ids import now

from .. import domain
from ..components import Components
from ..ports import StoredResponse
from ..services import apps as app_service
from ..services.idempotency import run_once


def components(request: Request) -> Components:
    return cast(Components, request.app.state.components)


Deps = Annotated[Components, Depends(components)]

_api_key = APIKeyHeader(
    name="apikey", auto_error=False, description="The app's API key (POST /admin/apps)."
)
_admin_bearer = HTTPBearer(auto_error=False, description="CLARION_GATEWAY_ADMIN_TOKEN")


async def require_app(
    deps: Deps,
    apikey: Annotated[str | None, Depends(_api_key)],
    appid: Annotated[str | None, Header(description="Optional; must be the key's app.")] = None,
) -> str:
    """The app (tenant) of a ``/v3`` request; 401 ``ERR_UNAUTHORIZED`` otherwise."""
    return await app_service.authenticate(deps.keys, apikey, appid)


AppId = Annotated[str, Depends(require_app)]


async def require_admin(
    deps: Deps,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)],
) -> None:
    app_service.check_admin(credentials.credentials if credentials else None, deps.admin_token)


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


async def respond(
    request: Request,
    deps: Components,
    app_id: str,
    idempotency_key: str | None,
    call: Callable[[], Awaitable[StoredResponse]],
) -> Response:
    """Run ``call`` once per ``Idempotency-Key`` (when given) and answer its response."""
    if idempotency_key is None:
        result = await call()
        replayed = False
    else:
        fingerprint = domain.fingerprint(request.method, request.url.path, await request.body())
        outcome = await run_once(
            deps.idempotency,
            app_id,
            idempotency_key,
            fingerprint,
            now(),
            deps.idempotency_ttl_s,
            deps.idempotency_lease_s,
            call,
        )
        result, replayed = outcome.response, outcome.replayed
    response = Response(result.body, status_code=result.status, media_type="application/json")
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def page_of(
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int | None, Query(alias="perPage", ge=1, le=100)] = None,
    limit: Annotated[int | None, Query(ge=1, le=100, description="Same as perPage.")] = None,
) -> domain.Page:
    return domain.Page(page, per_page or limit or 20)


PageParam = Annotated[domain.Page, Depends(page_of)]
