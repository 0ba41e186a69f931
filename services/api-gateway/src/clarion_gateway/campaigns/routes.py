"""Campaign routes: ``/v3/campaigns/campaigns`` (CometChat's paths and status codes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from clarion_shared.api import (
    CLIENT_ERRORS,
    Cursored,
    Data,
    Listed,
    Paged,
    Responses,
    error_response,
)
from clarion_shared.cursor import CreatedAtCursor, UpdatedAtCursor
from clarion_shared.ids import now

from ..idempotency.domain import StoredResponse
from ..paging import NAME_CURSOR, answer
from ..sends.domain import SendLimits
from ..sends.service import BatchRegistry, ChannelSource, SendCommands, TemplateSource
from ..templates.service import TemplateRepository
from ..web import Auth, IdempotencyKey, ListParam, Responder, json_response
from . import audience, service, tracking
from . import sending as sending_service
from .audience import AudienceLocks, Directory, RecipientRepository
from .domain import RecipientStatus
from .models import (
    CampaignCreate,
    CampaignPublic,
    CampaignSchedule,
    CampaignUpdate,
    RecipientPublic,
    RecipientsAdd,
    RecipientsAdded,
    RecipientSummary,
    StepMetricsPublic,
)
from .service import CAMPAIGN_SORTS, CampaignQuery, CampaignRepository
from .tracking import RECIPIENT_SORTS, TrackingRepository

_NOT_FOUND: Responses = {404: error_response("ERR_NOT_FOUND: no such campaign")}
_STATUS = error_response(
    "ERR_CAMPAIGN_STATUS: the campaign's status does not allow it (edits, deletes and "
    "recipients need draft; cancel needs draft or scheduled)"
)
_CHANGE_ERRORS: Responses = {
    **_NOT_FOUND,
    400: _STATUS,
    409: error_response("ERR_CONFLICT: another request changed the campaign (retry)"),
}
_RECIPIENT_ERRORS: Responses = {
    **_NOT_FOUND,
    400: error_response(
        "ERR_CAMPAIGN_STATUS (not a draft), ERR_TARGET_LIMIT_EXCEEDED (more than 10,000 "
        "recipients in all) or ERR_VALIDATION"
    ),
    409: error_response(
        "ERR_CONFLICT: another change of the audience is running, or the "
        "Idempotency-Key was used with another body or has not answered yet"
    ),
    503: error_response("ERR_UNAVAILABLE: the user-directory is unreachable"),
    504: error_response("ERR_TIMEOUT: the user-directory did not answer in time"),
}


@dataclass(frozen=True)
class CampaignSending:
    """What a campaign's send goes through: the direct sends' template and channel
    sources, their command publisher and the dispatcher's batch registry."""

    templates: TemplateSource
    channels: ChannelSource
    commands: SendCommands
    registry: BatchRegistry


_CampaignStatusParam = Literal[
    "draft", "scheduled", "sending", "completed", "failed", "partially_failed", "cancelled"
]


def router(  # long: one closure per route, all on the same dependencies
    auth: Auth,
    responder: Responder,
    campaigns: CampaignRepository,
    recipients: RecipientRepository,
    progress: TrackingRepository,
    locks: AudienceLocks,
    directory: Directory,
    templates: TemplateRepository,
    limits: SendLimits,
    sending: CampaignSending,
) -> APIRouter:
    routes = APIRouter(
        prefix="/v3/campaigns/campaigns",
        tags=["Campaigns"],
        dependencies=[Depends(auth.require_app)],
        responses=CLIENT_ERRORS,
    )

    @routes.post(
        "",
        status_code=201,
        response_model=Data[CampaignPublic],
        summary="Create a campaign (a draft pinned to an approved template version)",
        responses={
            400: error_response(
                "ERR_TEMPLATE_NOT_FOUND (no such template or version), "
                "ERR_TEMPLATE_NOT_APPROVED or ERR_VALIDATION"
            ),
            409: error_response(
                "ERR_CONFLICT: the Idempotency-Key was used with another body or has not "
                "answered yet"
            ),
        },
    )
    async def create_campaign(
        body: CampaignCreate,
        request: Request,
        app_id: str = Depends(auth.require_app),
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        async def call() -> StoredResponse:
            campaign = await service.create_campaign(
                campaigns, templates, app_id, body.to_draft(), now(), limits
            )
            return json_response(Data(data=CampaignPublic.of(campaign)), 201)

        return await responder.respond(request, app_id, idempotency_key, call)

    @routes.get(
        "",
        response_model=Listed[CampaignPublic],
        summary="List campaigns (pages, or cursor pages: sort updatedAt | createdAt | name)",
    )
    async def list_campaigns(
        paging: ListParam,
        status: _CampaignStatusParam | None = None,
        search: Annotated[str | None, Query(description="In name or id")] = None,
        sort: Literal["updatedAt", "createdAt", "name"] | None = None,
        updated_at: UpdatedAtCursor = None,
        created_at: CreatedAtCursor = None,
        name: Annotated[str | None, NAME_CURSOR] = None,
        app_id: str = Depends(auth.require_app),
    ) -> Paged[CampaignPublic] | Cursored[CampaignPublic]:
        values = {"updatedAt": updated_at, "createdAt": created_at, "name": name}
        query = CampaignQuery(
            status=status,
            search=search,
            paging=paging.sorted_by(sort, values).request(CAMPAIGN_SORTS),
        )
        found = await service.list_campaigns(campaigns, app_id, query)
        return answer(found, CampaignPublic.of)

    @routes.get(
        "/{campaign_id}",
        response_model=Data[CampaignPublic],
        summary="Get a campaign with its counts",
        responses=_NOT_FOUND,
    )
    async def get_campaign(
        campaign_id: str, app_id: str = Depends(auth.require_app)
    ) -> Data[CampaignPublic]:
        campaign = await service.get_campaign(campaigns, app_id, campaign_id)
        return Data(data=CampaignPublic.of(campaign))

    @routes.put(
        "/{campaign_id}",
        response_model=Data[CampaignPublic],
        summary="Update a draft campaign's name or config",
        responses=_CHANGE_ERRORS,
    )
    async def update_campaign(
        campaign_id: str, body: CampaignUpdate, app_id: str = Depends(auth.require_app)
    ) -> Data[CampaignPublic]:
        campaign = await service.update_campaign(
            campaigns, app_id, campaign_id, now(), name=body.name, config=body.config
        )
        return Data(data=CampaignPublic.of(campaign))

    @routes.delete(
        "/{campaign_id}",
        response_model=Data[CampaignPublic],
        summary="Delete a draft campaign and its audience",
        responses=_CHANGE_ERRORS,
    )
    async def delete_campaign(
        campaign_id: str, app_id: str = Depends(auth.require_app)
    ) -> Data[CampaignPublic]:
        campaign = await audience.delete_campaign(
            campaigns, recipients, locks, app_id, campaign_id, now()
        )
        return Data(data=CampaignPublic.of(campaign))

    @routes.post(
        "/{campaign_id}/cancel",
        response_model=Data[CampaignPublic],
        summary="Cancel a draft or scheduled campaign",
        responses=_CHANGE_ERRORS,
    )
    async def cancel_campaign(
        campaign_id: str, app_id: str = Depends(auth.require_app)
    ) -> Data[CampaignPublic]:
        campaign = await service.cancel_campaign(campaigns, app_id, campaign_id, now())
        return Data(data=CampaignPublic.of(campaign))

    @routes.post(
        "/{campaign_id}/schedule",
        response_model=Data[CampaignPublic],
        summary="Schedule a draft campaign (or move a scheduled one) to send at scheduledAt",
        responses={
            **_NOT_FOUND,
            400: error_response(
                "ERR_CAMPAIGN_STATUS (not a draft or scheduled), ERR_BAD_REQUEST (no "
                "recipients) or ERR_VALIDATION (scheduledAt not in the future)"
            ),
            409: error_response("ERR_CONFLICT: another request changed the campaign (retry)"),
        },
    )
    async def schedule_campaign(
        campaign_id: str, body: CampaignSchedule, app_id: str = Depends(auth.require_app)
    ) -> Data[CampaignPublic]:
        campaign = await service.schedule_campaign(
            campaigns, app_id, campaign_id, body.scheduled_at, now()
        )
        return Data(data=CampaignPublic.of(campaign))

    @routes.post(
        "/{campaign_id}/send",
        response_model=Data[CampaignPublic],
        summary="Send a draft or scheduled campaign now (again: resume a send cut short)",
        responses={
            **_NOT_FOUND,
            400: error_response(
                "ERR_CAMPAIGN_STATUS (not a draft or scheduled), ERR_BAD_REQUEST (no "
                "recipients), ERR_TEMPLATE_NOT_FOUND, ERR_TEMPLATE_NOT_APPROVED, "
                "ERR_CHANNEL_NOT_FOUND or ERR_VALIDATION (variables too large)"
            ),
            409: error_response("ERR_CONFLICT: a change of the audience is running"),
            503: error_response("ERR_UNAVAILABLE: the broker or the dispatcher is unreachable"),
        },
    )
    async def send_campaign(
        campaign_id: str, app_id: str = Depends(auth.require_app)
    ) -> Data[CampaignPublic]:
        campaign = await sending_service.send_campaign(
            campaigns,
            recipients,
            locks,
            sending.templates,
            sending.channels,
            sending.commands,
            sending.registry,
            app_id,
            campaign_id,
            now(),
            limits,
        )
        return Data(data=CampaignPublic.of(campaign))

    @routes.post(
        "/{campaign_id}/recipients",
        status_code=201,
        response_model=Data[RecipientsAdded],
        summary="Add recipients by user id, or every user a users-list filter matches",
        responses=_RECIPIENT_ERRORS,
    )
    async def add_recipients(
        campaign_id: str,
        body: RecipientsAdd,
        request: Request,
        app_id: str = Depends(auth.require_app),
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        async def call() -> StoredResponse:
            if body.filter is not None:
                change = await audience.add_matching(
                    campaigns,
                    recipients,
                    locks,
                    directory,
                    app_id,
                    campaign_id,
                    body.filter.filters(),
                    now(),
                )
            else:
                change = await audience.add_users(
                    campaigns,
                    recipients,
                    locks,
                    directory,
                    app_id,
                    campaign_id,
                    body.user_ids or [],
                    body.user_variables,
                    now(),
                    limits,
                )
            return json_response(Data(data=RecipientsAdded.of(change)), 201)

        return await responder.respond(request, app_id, idempotency_key, call)

    @routes.get(
        "/{campaign_id}/recipients",
        response_model=Listed[RecipientPublic],
        summary="List a campaign's recipients with their states (pages, or cursor pages)",
        responses=_NOT_FOUND,
    )
    async def list_recipients(
        campaign_id: str,
        paging: ListParam,
        status: RecipientStatus | None = None,
        sort: Literal["updatedAt", "createdAt"] | None = None,
        updated_at: UpdatedAtCursor = None,
        created_at: CreatedAtCursor = None,
        app_id: str = Depends(auth.require_app),
    ) -> Paged[RecipientPublic] | Cursored[RecipientPublic]:
        values = {"updatedAt": updated_at, "createdAt": created_at}
        found = await tracking.list_recipients(
            campaigns,
            recipients,
            progress,
            app_id,
            campaign_id,
            status,
            paging.sorted_by(sort, values).request(RECIPIENT_SORTS),
        )
        return answer(found, RecipientPublic.of)

    @routes.get(
        "/{campaign_id}/recipients/summary",
        response_model=Data[RecipientSummary],
        summary="Count a campaign's recipients per status",
        responses=_NOT_FOUND,
    )
    async def recipient_summary(
        campaign_id: str, app_id: str = Depends(auth.require_app)
    ) -> Data[RecipientSummary]:
        counts = await tracking.summarize(campaigns, progress, app_id, campaign_id)
        return Data(data=RecipientSummary(total=sum(counts.values()), **counts))

    @routes.get(
        "/{campaign_id}/sequence-metrics",
        response_model=Data[list[StepMetricsPublic]],
        summary="Per channel step of the pinned template version: sent, delivered, read, failed",
        responses=_NOT_FOUND,
    )
    async def sequence_metrics(
        campaign_id: str, app_id: str = Depends(auth.require_app)
    ) -> Data[list[StepMetricsPublic]]:
        steps = await tracking.sequence_metrics(campaigns, templates, progress, app_id, campaign_id)
        return Data(data=[StepMetricsPublic.of(step) for step in steps])

    return routes
