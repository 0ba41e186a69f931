"""What a live stream shows: a campaign's object and its recipients by state, or a
batch's status (``clarion_shared.public.batches.BatchPublic``)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ConfigDict

from clarion_shared.api import ApiModel
from clarion_shared.public.batches import BatchPublic

from ..campaigns.models import CampaignPublic, RecipientSummary

__all__ = ["BatchPublic", "CampaignProgress", "Snapshot"]


class CampaignProgress(ApiModel):
    """A campaign as ``GET .../campaigns/{id}`` shows it, with its recipients per state
    as ``.../recipients/summary`` counts them."""

    model_config = ConfigDict(frozen=True)

    campaign: CampaignPublic
    recipients: RecipientSummary


@dataclass(frozen=True)
class Snapshot:
    """One reading of a send's progress; ``final`` once nothing will change it."""

    data: CampaignProgress | BatchPublic
    final: bool

    def to_json(self) -> str:
        return self.data.model_dump_json(by_alias=True)
