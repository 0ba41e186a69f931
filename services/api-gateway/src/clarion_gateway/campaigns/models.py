"""HTTP models of the campaign routes (CometChat's shapes).

Request models ignore fields they do not know: CometChat clients send extras.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import ConfigDict, Field, JsonValue, model_validator

from clarion_shared.api import ApiModel

from .audience import AudienceChange
from .domain import MAX_RECIPIENTS, Campaign, Recipient
from .service import CampaignDraft
from .tracking import StepMetrics


class CampaignCreate(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Summer sale",
                    "templateId": "summer-sale",
                    "templateVersion": 1,
                    "variables": {"promoCode": "SUMMER25"},
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=200)
    template_id: str = Field(min_length=1, max_length=200, description="Id or slug.")
    template_version: int = Field(ge=1, description="An approved version, pinned.")
    variables: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="Campaign-level variables: below each recipient's own, above the "
        "template's defaults.",
    )
    tag: str | None = Field(default=None, max_length=200)
    config: dict[str, Any] = Field(default_factory=dict, description="Free-form, kept.")

    def to_draft(self) -> CampaignDraft:
        return CampaignDraft(
            name=self.name,
            template_id=self.template_id,
            template_version=self.template_version,
            variables=dict(self.variables),
            tag=self.tag,
            config=dict(self.config),
        )


class CampaignUpdate(ApiModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    config: dict[str, Any] | None = None


class CampaignPublic(ApiModel):
    id: str
    campaign_id: str
    name: str
    status: str
    template_id: str
    template_version: int
    variables: dict[str, JsonValue]
    tag: str | None
    config: dict[str, Any]
    scheduled_at: int | None
    started_at: int | None
    completed_at: int | None
    total_targets: int
    sent_count: int
    delivered_count: int
    failed_count: int
    read_count: int
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, c: Campaign) -> CampaignPublic:
        return cls(
            id=c.campaign_id,
            campaign_id=c.campaign_id,
            name=c.name,
            status=c.status,
            template_id=c.template_id,
            template_version=c.template_version,
            variables=c.variables,
            tag=c.tag,
            config=c.config,
            scheduled_at=c.scheduled_at,
            started_at=c.started_at,
            completed_at=c.completed_at,
            total_targets=c.total_targets,
            sent_count=c.counts.sent,
            delivered_count=c.counts.delivered,
            failed_count=c.counts.failed,
            read_count=c.counts.read,
            created_at=c.created_at,
            updated_at=c.updated_at,
        )


class CampaignSchedule(ApiModel):
    scheduled_at: int = Field(
        ge=0, le=2**53 - 1, description="Unix seconds, in the future.", examples=[1714000000]
    )


class AudienceFilter(ApiModel):
    """The user picker: the users list's filters (``GET /v3/users``)."""

    model_config = ConfigDict(extra="forbid")

    search_key: str | None = Field(default=None, max_length=100)
    search_in: str | None = Field(default=None, description="uid, name or both")
    role: str | None = Field(default=None, description="Comma-separated roles.")
    roles: str | None = None
    status: Literal["online", "offline"] | None = None
    created_after: int | None = Field(default=None, ge=0)
    created_before: int | None = Field(default=None, ge=0)
    tags: str | None = Field(default=None, description="Comma-separated tags.")

    def filters(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class RecipientsAdd(ApiModel):
    """``{userIds, userVariables?}`` (CometChat's shape) or ``{filter}``."""

    user_ids: list[str] | None = Field(
        default=None,
        min_length=1,
        description=f"1-{MAX_RECIPIENTS:,} user ids (more in all: ERR_TARGET_LIMIT_EXCEEDED).",
    )
    user_variables: dict[str, dict[str, JsonValue]] | None = Field(
        default=None, description="Per user id; kept on each recipient."
    )
    filter: AudienceFilter | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if (self.user_ids is None) == (self.filter is None):
            raise ValueError("give either userIds or filter")
        if self.filter is not None and self.user_variables:
            raise ValueError("userVariables goes with userIds")
        return self


def _is_none(value: object) -> bool:
    return value is None


class RejectedPublic(ApiModel):
    user_id: str | None
    code: str
    message: str
    row: int | None = Field(default=None, exclude_if=_is_none, description="A CSV row's number.")


class RecipientsAdded(ApiModel):
    added: int
    duplicates: int
    rejected: list[RejectedPublic]
    total_targets: int

    @classmethod
    def of(cls, change: AudienceChange) -> RecipientsAdded:
        return cls(
            added=change.added,
            duplicates=change.duplicates,
            rejected=[
                RejectedPublic(user_id=r.uid, code=r.code, message=r.message, row=r.row)
                for r in change.rejected
            ],
            total_targets=change.campaign.total_targets,
        )


class RecipientPublic(ApiModel):
    id: str
    user_id: str
    status: str
    variables: dict[str, JsonValue]
    code: str | None = Field(default=None, exclude_if=_is_none)
    message: str | None = Field(default=None, exclude_if=_is_none)
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, r: Recipient) -> RecipientPublic:
        return cls(
            id=r.recipient_id,
            user_id=r.uid,
            status=r.status,
            variables=r.variables,
            code=r.code,
            message=r.message,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )


class RecipientSummary(ApiModel):
    total: int
    pending: int
    processing: int
    completed: int
    failed: int


class StepMetricsPublic(ApiModel):
    """One channel step of the campaign's template version (``sequence-metrics``)."""

    step: int = Field(description="1-based, in the template version's channel order")
    channel_type: str
    channel_id: str | None = Field(description="the channel the send resolved (once sent)")
    sent: int = Field(description="deliveries sent: at the fan-out (in-app) or by a worker")
    delivered: int = Field(description="feed items marked delivered (in-app)")
    read: int = Field(description="feed items marked read (in-app)")
    failed: int = Field(description="deliveries failed: at the fan-out or by a worker")
    queued: int = Field(description="deliveries waiting for a worker or a retry")

    @classmethod
    def of(cls, s: StepMetrics) -> StepMetricsPublic:
        return cls(
            step=s.step,
            channel_type=s.channel_type,
            channel_id=s.channel_id,
            sent=s.sent,
            delivered=s.delivered,
            read=s.read,
            failed=s.failed,
            queued=s.queued,
        )
