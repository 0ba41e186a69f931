"""HTTP models of the direct send route."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, JsonValue

from clarion_shared.api import ApiModel
from clarion_shared.contracts.sends import ChannelType

from . import domain


class MessageSend(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "templateId": "welcome",
                    "receivers": ["alice"],
                    "variables": {"alice": {"name": "Alice"}},
                }
            ]
        }
    )

    template_id: str = Field(min_length=1, description="Template id (slug).")
    receivers: list[str] = Field(description="uids; 1-10 realtime, 11-10,000 batch.")
    variables: dict[str, dict[str, JsonValue]] | None = Field(
        default=None, description="Per receiver: {uid: {key: value}}."
    )
    tag: str | None = Field(default=None, max_length=200)
    channels: list[ChannelType] | None = Field(
        default=None, description="Narrow to some of the template's channel types."
    )

    def to_request(self, app_id: str) -> domain.SendRequest:
        return domain.SendRequest(
            app_id=app_id,
            template_id=self.template_id,
            receivers=self.receivers,
            variables=self.variables,
            tag=self.tag,
            channels=self.channels,
        )


class ReceiverStatus(ApiModel):
    uid: str
    status: Literal["sent", "failed"]
    code: str | None = None
    message: str | None = None


class RealtimeSent(ApiModel):
    mode: Literal["realtime"] = "realtime"
    notification_id: str
    channels: list[str]
    receivers: list[ReceiverStatus]

    @classmethod
    def of(cls, outcome: domain.RealtimeOutcome) -> RealtimeSent:
        return cls(
            notification_id=outcome.notification_id,
            channels=outcome.channels,
            receivers=[
                ReceiverStatus(uid=r.uid, status=r.status, code=r.code, message=r.message)
                for r in outcome.result.receivers
            ],
        )


class BatchAccepted(ApiModel):
    mode: Literal["batch"] = "batch"
    batch_id: str
    total: int
    channels: list[str]

    @classmethod
    def of(cls, accepted: domain.BatchAccepted) -> BatchAccepted:
        return cls(batch_id=accepted.batch_id, total=accepted.total, channels=accepted.channels)
