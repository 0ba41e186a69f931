"""Category routes: ``/v3/campaigns/templates/categories``.

Included before the template routes, whose ``/{template_id}`` would otherwise take
``categories`` for a template id.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from clarion_shared.api import (
    CLIENT_ERRORS,
    Cursored,
    Data,
    Deleted,
    Listed,
    Paged,
    Responses,
    error_response,
    openapi_link,
)
from clarion_shared.cursor import CreatedAtCursor, UpdatedAtCursor
from clarion_shared.ids import now

from ..idempotency.domain import StoredResponse
from ..paging import NAME_CURSOR, answer
from ..web import Auth, IdempotencyKey, ListParam, Responder, json_response
from . import service
from .models import CategoryCreate, CategoryPublic, CategoryUpdate
from .service import CATEGORY_SORTS, CategoryQuery, CategoryRepository, TemplateCatalog

PREFIX = "/v3/campaigns/templates/categories"
_CATEGORY = PREFIX + "/{category_id}"
_BUSY = "another request changed the app's categories at the same time (retry)"
_NOT_FOUND: Responses = {404: error_response("ERR_NOT_FOUND: no such category")}
_CREATE_ERRORS: Responses = {
    409: error_response(
        f"ERR_CONFLICT: the name is taken, the app has 1000 categories, {_BUSY}, or the "
        "Idempotency-Key was used with another body or has not answered yet"
    )
}
_UPDATE_ERRORS: Responses = {
    **_NOT_FOUND,
    409: error_response(
        "ERR_CONFLICT: the name is taken, the category is a default one (its name is "
        f"fixed), templates use it (details.templateIds), or {_BUSY}"
    ),
}
_DELETE_ERRORS: Responses = {
    **_NOT_FOUND,
    409: error_response(
        "ERR_CONFLICT: the category is a default one, templates use it "
        f"(details.templateIds; archived ones too), or {_BUSY}"
    ),
}
_CREATED_LINKS: Responses = {
    201: {
        "links": {
            name: openapi_link(method, _CATEGORY, {"category_id": "$response.body#/data/id"})
            for name, method in (
                ("GetCategory", "get"),
                ("UpdateCategory", "put"),
                ("DeleteCategory", "delete"),
            )
        }
    }
}


def router(  # long: one closure per route, all on the same dependencies
    auth: Auth,
    responder: Responder,
    categories: CategoryRepository,
    templates: TemplateCatalog,
) -> APIRouter:
    routes = APIRouter(
        prefix=PREFIX,
        tags=["Template Categories"],
        dependencies=[Depends(auth.require_app)],
        responses=CLIENT_ERRORS,
    )

    @routes.post(
        "",
        status_code=201,
        response_model=Data[CategoryPublic],
        summary="Create a template category",
        responses={**_CREATE_ERRORS, **_CREATED_LINKS},
    )
    async def create_category(
        body: CategoryCreate,
        request: Request,
        app_id: str = Depends(auth.require_app),
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        async def call() -> StoredResponse:
            category = await service.create_category(
                categories, app_id, body.name, body.description, now()
            )
            return json_response(Data(data=CategoryPublic.of(category)), 201)

        return await responder.respond(request, app_id, idempotency_key, call)

    @routes.get(
        "",
        response_model=Listed[CategoryPublic],
        summary="List the app's template categories, CometChat's seven included (pages, or "
        "cursor pages: sort updatedAt | createdAt | name)",
    )
    async def list_categories(
        paging: ListParam,
        sort: Annotated[
            Literal["name", "createdAt", "updatedAt"] | None,
            Query(description="updatedAt by default."),
        ] = None,
        updated_at: UpdatedAtCursor = None,
        created_at: CreatedAtCursor = None,
        name: Annotated[str | None, NAME_CURSOR] = None,
        app_id: str = Depends(auth.require_app),
    ) -> Paged[CategoryPublic] | Cursored[CategoryPublic]:
        values = {"updatedAt": updated_at, "createdAt": created_at, "name": name}
        query = CategoryQuery(paging.sorted_by(sort, values).request(CATEGORY_SORTS))
        found = await service.list_categories(categories, app_id, query, now())
        return answer(found, CategoryPublic.of)

    @routes.get(
        "/{category_id}",
        response_model=Data[CategoryPublic],
        summary="Get a template category",
        responses=_NOT_FOUND,
    )
    async def get_category(
        category_id: str, app_id: str = Depends(auth.require_app)
    ) -> Data[CategoryPublic]:
        category = await service.get_category(categories, app_id, category_id, now())
        return Data(data=CategoryPublic.of(category))

    @routes.put(
        "/{category_id}",
        response_model=Data[CategoryPublic],
        summary="Update a template category (a default one: its description only)",
        responses=_UPDATE_ERRORS,
    )
    async def update_category(
        category_id: str, body: CategoryUpdate, app_id: str = Depends(auth.require_app)
    ) -> Data[CategoryPublic]:
        category = await service.update_category(
            categories, templates, app_id, category_id, body.to_changes(), now()
        )
        return Data(data=CategoryPublic.of(category))

    @routes.delete(
        "/{category_id}",
        response_model=Data[Deleted],
        summary="Delete a template category no template uses (never a default one)",
        responses=_DELETE_ERRORS,
    )
    async def delete_category(
        category_id: str, app_id: str = Depends(auth.require_app)
    ) -> Data[Deleted]:
        await service.delete_category(categories, templates, app_id, category_id, now())
        return Data(data=Deleted())

    return routes
