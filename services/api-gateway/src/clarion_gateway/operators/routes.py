"""Operator routes: dashboard operators and their roles (``/admin/operators``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from clarion_shared.api import BAD_REQUEST_RESPONSE, Data, Paged, Responses, error_response
from clarion_shared.ids import now

from ..apps.service import AppLookup
from ..web import Auth
from . import service
from .models import OperatorCreate, OperatorPublic, OperatorRoles
from .service import OperatorRepository

# Every route may answer 400: the strict input check reads every query string too.
_COMMON: Responses = {
    400: BAD_REQUEST_RESPONSE,
    401: error_response("ERR_UNAUTHORIZED: missing or wrong admin token"),
}
_CREATE_ERRORS: Responses = {
    400: BAD_REQUEST_RESPONSE,
    409: error_response("ERR_CONFLICT: an operator has this email"),
}
_ROLES_ERRORS: Responses = {
    400: BAD_REQUEST_RESPONSE,
    404: error_response("ERR_NOT_FOUND: no operator has this email"),
}


def router(auth: Auth, operators: OperatorRepository, apps: AppLookup) -> APIRouter:
    routes = APIRouter(
        prefix="/admin/operators",
        tags=["Operator"],
        dependencies=[Depends(auth.require_admin)],
        responses=_COMMON,
    )

    @routes.post(
        "",
        status_code=201,
        response_model=Data[OperatorPublic],
        responses=_CREATE_ERRORS,
        summary="Create a dashboard operator with roles per app",
    )
    async def create_operator(body: OperatorCreate) -> Data[OperatorPublic]:
        operator = await service.create_operator(
            operators, apps, body.email, body.password, body.roles, now(), body.superuser
        )
        return Data(data=OperatorPublic.of(operator))

    @routes.put(
        "/{email}/roles",
        response_model=Data[OperatorPublic],
        responses=_ROLES_ERRORS,
        summary="Replace a dashboard operator's roles",
    )
    async def set_roles(email: str, body: OperatorRoles) -> Data[OperatorPublic]:
        operator = await service.set_roles(operators, apps, email, body.roles)
        return Data(data=OperatorPublic.of(operator))

    @routes.get(
        "",
        response_model=Paged[OperatorPublic],
        summary="List the dashboard operators, by email, on one page (never their password hashes)",
    )
    async def list_operators() -> Paged[OperatorPublic]:
        listed = [OperatorPublic.of(o) for o in await service.list_operators(operators)]
        return Paged.of(listed, len(listed), 1, max(1, len(listed)))

    return routes
