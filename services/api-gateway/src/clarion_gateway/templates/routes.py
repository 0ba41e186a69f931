"""Template routes: ``/v3/campaigns/templates``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from clarion_shared.api import (
    CLIENT_ERRORS,
    Cursored,
    Data,
    Listed,
    Paged,
    Responses,
    error_response,
    openapi_link,
)
from clarion_shared.cursor import CreatedAtCursor, UpdatedAtCursor
from clarion_shared.ids import now

from ..categories.service import CategoryRepository
from ..idempotency.domain import StoredResponse
from ..paging import NAME_CURSOR, answer, split_csv
from ..web import Auth, IdempotencyKey, ListParam, Responder, json_response
from . import categorized, service
from .domain import TemplateLimits
from .models import (
    TemplateChannelContentUpdate,
    TemplateCreate,
    TemplatePublic,
    TemplateSummary,
    TemplateUpdate,
    TemplateVersionCreate,
    channel_inputs,
    schema_inputs,
)
from .service import TEMPLATE_SORTS, TemplateQuery, TemplateRepository

_NOT_FOUND: Responses = {404: error_response("ERR_NOT_FOUND: no such template")}
_BUSY = "another request changed the template at the same time (retry)"
_CREATE_ERRORS: Responses = {
    409: error_response(
        "ERR_CONFLICT: the templateId is taken, a channel type repeats, a new "
        "templateCategory would be the app's 1001st category, or the Idempotency-Key was "
        "used with another body or has not answered yet"
    )
}
_CHANGE_ERRORS: Responses = {
    **_NOT_FOUND,
    409: error_response(
        "ERR_CONFLICT: a channel type repeats, a status change is not allowed, a new "
        f"templateCategory would be the app's 1001st category, or {_BUSY}"
    ),
}
_ARCHIVE_ERRORS: Responses = {**_NOT_FOUND, 409: error_response(f"ERR_CONFLICT: {_BUSY}")}
_VERSION_ERRORS: Responses = {
    **_NOT_FOUND,
    409: error_response(
        f"ERR_CONFLICT: a channel type repeats, {_BUSY}, or the Idempotency-Key was used "
        "with another body or has not answered yet"
    ),
}
_TEMPLATE = "/v3/campaigns/templates/{template_id}"
_THIS_TEMPLATE = {"template_id": "$response.body#/data/templateId"}


_CREATED_LINKS: Responses = {
    201: {
        "links": {
            name: openapi_link(method, path, _THIS_TEMPLATE)
            for name, method, path in (
                ("GetTemplate", "get", _TEMPLATE),
                ("UpdateTemplate", "put", _TEMPLATE),
                ("ArchiveTemplate", "delete", _TEMPLATE),
                ("CreateTemplateVersion", "post", f"{_TEMPLATE}/versions"),
            )
        }
    }
}


def router(  # long: one closure per route, all on the same dependencies
    auth: Auth,
    responder: Responder,
    templates: TemplateRepository,
    categories: CategoryRepository,
    limits: TemplateLimits,
) -> APIRouter:
    routes = APIRouter(
        prefix="/v3/campaigns/templates",
        tags=["Templates"],
        dependencies=[Depends(auth.require_app)],
        responses=CLIENT_ERRORS,
    )

    @routes.post(
        "",
        status_code=201,
        response_model=Data[TemplatePublic],
        summary="Create a template (version 1, a draft unless status says otherwise)",
        responses={**_CREATE_ERRORS, **_CREATED_LINKS},
    )
    async def create_template(
        body: TemplateCreate,
        request: Request,
        app_id: str = Depends(auth.require_app),
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        async def call() -> StoredResponse:
            template = await categorized.create_template(
                templates, categories, app_id, body.to_draft(), now(), limits
            )
            return json_response(Data(data=TemplatePublic.of(template)), 201)

        return await responder.respond(request, app_id, idempotency_key, call)

    @routes.get(
        "",
        response_model=Listed[TemplateSummary],
        summary="List templates (pages, or cursor pages: sort updatedAt | createdAt | name)",
    )
    async def list_templates(  # long: CometChat's filters and cursor values, each documented
        paging: ListParam,
        status: Literal["draft", "approved", "archived"] | None = None,
        search: Annotated[str | None, Query(description="In name or templateId")] = None,
        tags: Annotated[str | None, Query(description="Comma-separated")] = None,
        tag_match: Annotated[Literal["any", "all"], Query(alias="tagMatch")] = "any",
        template_category: Annotated[str | None, Query(alias="templateCategory")] = None,
        sort: Annotated[
            Literal["updatedAt", "createdAt", "name"] | None,
            Query(description="Pages: updatedAt by default; cursor pages likewise."),
        ] = None,
        updated_at: UpdatedAtCursor = None,
        created_at: CreatedAtCursor = None,
        name: Annotated[str | None, NAME_CURSOR] = None,
        app_id: str = Depends(auth.require_app),
    ) -> Paged[TemplateSummary] | Cursored[TemplateSummary]:
        values = {"updatedAt": updated_at, "createdAt": created_at, "name": name}
        query = TemplateQuery(
            status=status,
            search=search,
            tags=tuple(split_csv(tags)),
            tag_match=tag_match,
            template_category=template_category,
            paging=paging.sorted_by(sort, values).request(TEMPLATE_SORTS),
        )
        found = await service.list_templates(templates, app_id, query)
        return answer(found, TemplateSummary.of)

    @routes.get(
        "/{template_id}",
        response_model=Data[TemplatePublic],
        summary="Get a template with its versions",
        responses=_NOT_FOUND,
    )
    async def get_template(
        template_id: str, app_id: str = Depends(auth.require_app)
    ) -> Data[TemplatePublic]:
        template = await service.get_template(templates, app_id, template_id)
        return Data(data=TemplatePublic.of(template))

    @routes.put(
        "/{template_id}",
        response_model=Data[TemplatePublic],
        summary="Update a template; {status: approved} approves the newest version",
        responses=_CHANGE_ERRORS,
    )
    async def update_template(
        template_id: str, body: TemplateUpdate, app_id: str = Depends(auth.require_app)
    ) -> Data[TemplatePublic]:
        template = await categorized.update_template(
            templates, categories, app_id, template_id, body.to_changes(), now(), limits
        )
        return Data(data=TemplatePublic.of(template))

    @routes.delete(
        "/{template_id}",
        response_model=Data[TemplatePublic],
        summary="Archive a template",
        responses=_ARCHIVE_ERRORS,
    )
    async def archive_template(
        template_id: str, app_id: str = Depends(auth.require_app)
    ) -> Data[TemplatePublic]:
        template = await service.archive_template(templates, app_id, template_id, now())
        return Data(data=TemplatePublic.of(template))

    @routes.post(
        "/{template_id}/versions",
        status_code=201,
        response_model=Data[TemplatePublic],
        summary="Create the next version (a draft copy of the newest, with any changes)",
        responses=_VERSION_ERRORS,
    )
    async def create_version(
        template_id: str,
        request: Request,
        body: Annotated[TemplateVersionCreate | None, Body()] = None,
        app_id: str = Depends(auth.require_app),
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        changes = body or TemplateVersionCreate()

        async def call() -> StoredResponse:
            template = await service.add_version(
                templates,
                app_id,
                template_id,
                channel_inputs(changes.channels),
                schema_inputs(changes.variable_schema),
                now(),
                limits,
            )
            return json_response(Data(data=TemplatePublic.of(template)), 201)

        return await responder.respond(request, app_id, idempotency_key, call)

    @routes.put(
        "/{template_id}/channels/{channel_type}",
        response_model=Data[TemplatePublic],
        summary="Replace one channel's content (a new draft version if the newest is approved)",
        responses={**_NOT_FOUND, 409: error_response(f"ERR_CONFLICT: {_BUSY}")},
    )
    async def put_channel_content(
        template_id: str,
        channel_type: str,
        body: TemplateChannelContentUpdate,
        app_id: str = Depends(auth.require_app),
    ) -> Data[TemplatePublic]:
        template = await service.put_channel_content(
            templates,
            app_id,
            template_id,
            channel_type,
            body.content,
            body.channel_id,
            now(),
            limits,
        )
        return Data(data=TemplatePublic.of(template))

    return routes
