"""Template routes: ``/v3/campaigns/templates``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from clarion_shared.ids import now

from .. import domain
from ..models import (
    ERRORS,
    Data,
    Paged,
    TemplateChannelContentUpdate,
    TemplateCreate,
    TemplatePublic,
    TemplateSummary,
    TemplateUpdate,
    TemplateVersionCreate,
)
from ..ports import StoredResponse
from ..services import templates as service
from .deps import AppId, Deps, IdempotencyKey, PageParam, json_response, require_app, respond

router = APIRouter(
    prefix="/v3/campaigns/templates",
    tags=["Templates"],
    dependencies=[Depends(require_app)],
    responses=ERRORS,
)


@router.post(
    "",
    status_code=201,
    response_model=Data[TemplatePublic],
    summary="Create a template (version 1, a draft unless status says otherwise)",
)
async def create_template(
    body: TemplateCreate,
    request: Request,
    app_id: AppId,
    deps: Deps,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def call() -> StoredResponse:
        template = await service.create_template(deps.templates, app_id, body, now())
        return json_response(Data(data=TemplatePublic.of(template)), 201)

    return await respond(request, deps, app_id, idempotency_key, call)


@router.get("", response_model=Paged[TemplateSummary], summary="List templates")
async def list_templates(
    app_id: AppId,
    deps: Deps,
    page: PageParam,
    status: Literal["draft", "approved", "archived"] | None = None,
    search: Annotated[str | None, Query(description="In name or templateId")] = None,
    tags: Annotated[str | None, Query(description="Comma-separated")] = None,
    tag_match: Annotated[Literal["any", "all"], Query(alias="tagMatch")] = "any",
    template_category: Annotated[str | None, Query(alias="templateCategory")] = None,
    sort: Literal["updatedAt", "createdAt", "name"] = "updatedAt",
    order: Literal["asc", "desc"] = "desc",
) -> Paged[TemplateSummary]:
    found = await service.list_templates(
        deps.templates,
        app_id,
        service.TemplateQuery(
            status=status,
            search=search,
            tags=tuple(domain.split_csv(tags)),
            tag_match=tag_match,
            template_category=template_category,
            sort=sort,
            order=order,
            page=page,
        ),
    )
    return Paged.of([TemplateSummary.of(t) for t in found.items], found.total, found.page)


@router.get(
    "/{template_id}",
    response_model=Data[TemplatePublic],
    summary="Get a template with its versions",
)
async def get_template(template_id: str, app_id: AppId, deps: Deps) -> Data[TemplatePublic]:
    template = await service.get_template(deps.templates, app_id, template_id)
    return Data(data=TemplatePublic.of(template))


@router.put(
    "/{template_id}",
    response_model=Data[TemplatePublic],
    summary="Update a template; {status: approved} approves the newest version",
)
async def update_template(
    template_id: str, body: TemplateUpdate, app_id: AppId, deps: Deps
) -> Data[TemplatePublic]:
    template = await service.update_template(deps.templates, app_id, template_id, body, now())
    return Data(data=TemplatePublic.of(template))


@router.delete("/{template_id}", response_model=Data[TemplatePublic], summary="Archive a template")
async def archive_template(template_id: str, app_id: AppId, deps: Deps) -> Data[TemplatePublic]:
    template = await service.archive_template(deps.templates, app_id, template_id, now())
    return Data(data=TemplatePublic.of(template))


@router.post(
    "/{template_id}/versions",
    status_code=201,
    response_model=Data[TemplatePublic],
    summary="Create the next version (a draft copy of the newest, with any changes)",
)
async def create_version(
    template_id: str,
    request: Request,
    app_id: AppId,
    deps: Deps,
    body: Annotated[TemplateVersionCreate | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def call() -> StoredResponse:
        template = await service.add_version(
            deps.templates, app_id, template_id, body or TemplateVersionCreate(), now()
        )
        return json_response(Data(data=TemplatePublic.of(template)), 201)

    return await respond(request, deps, app_id, idempotency_key, call)


@router.put(
    "/{template_id}/channels/{channel_type}",
    response_model=Data[TemplatePublic],
    summary="Replace one channel's content (a new draft version if the newest is approved)",
)
async def put_channel_content(
    template_id: str,
    channel_type: str,
    body: TemplateChannelContentUpdate,
    app_id: AppId,
    deps: Deps,
) -> Data[TemplatePublic]:
    template = await service.put_channel_content(
        deps.templates, app_id, template_id, channel_type, body, now()
    )
    return Data(data=TemplatePublic.of(template))
