"""A campaign is final: the gateway, which owns campaigns, says so on ``clarion.status``
(``CampaignFinished``) once it has applied the dispatcher's ``BatchCompleted``, with the
campaign object as ``GET /v3/campaigns/campaigns/{id}`` answers it, for the
webhook-emitter's campaign triggers.

Published at every application of the completion, a redelivery's too, with the same
derived event id (the emitter drops the repeats): published after the campaign is saved
and before the consumer's fetch is committed, so a crash between the two applies and
publishes again. A broker error is raised as it is (transient: the fetch is delivered
again), never turned into a dead letter.
"""

from __future__ import annotations

from typing import Protocol

from faststream.kafka import KafkaBroker

from clarion_shared import kafka
from clarion_shared.contracts.status import BatchCompleted, CampaignFinished
from clarion_shared.ids import derive_id
from clarion_shared.topics import Topics

from .domain import Campaign
from .models import CampaignPublic


class FinishedPublisher(Protocol):
    async def campaign_finished(self, event: CampaignFinished) -> None:
        """Publish ``event`` on ``clarion.status``, keyed by the campaign id."""
        ...


def finished_event(campaign: Campaign, completed: BatchCompleted) -> CampaignFinished:
    """What says ``campaign`` is final, as ``completed`` decided."""
    return CampaignFinished(
        event_id=derive_id(campaign.campaign_id, "campaign_finished"),
        app_id=campaign.app_id,
        send_id=campaign.campaign_id,
        mode="campaign",
        occurred_at=completed.completed_at,
        campaign_id=campaign.campaign_id,
        status=completed.status,
        campaign=CampaignPublic.of(campaign).to_json(),
    )


class KafkaFinishedPublisher:
    def __init__(self, broker: KafkaBroker, topics: Topics) -> None:
        self._broker = broker
        self._topic = topics.status

    async def campaign_finished(self, event: CampaignFinished) -> None:
        await kafka.publish(self._broker, self._topic, event, key=event.campaign_id)
