"""Pure rules of push notifications: whose one is, and what it shows from its record,
the delivery worker's outcome and the device's reports."""

from __future__ import annotations

from clarion_shared.errors import NotFound

from ..delivery.models import DeliveryOutcome
from ..notifications.models import NotificationRecord
from .models import PushNotificationPublic, PushState, PushStatus

PUSH = "push"


class PushNotificationNotFound(NotFound):
    """The user has no such push notification (it may be another user's, another app's,
    or a record of another channel type)."""

    def __init__(self) -> None:
        super().__init__("Push notification")


def is_theirs(record: NotificationRecord | None, uid: str) -> bool:
    """Whether ``record`` is a push notification of the user ``uid``."""
    return record is not None and record.uid == uid and record.channel_type == PUSH


def push_status(
    record: NotificationRecord, outcome: DeliveryOutcome | None, state: PushState | None
) -> PushStatus:
    """What the device reported last in the order delivered, clicked; else what the
    provider answered (a record failed at the fan-out, a user without a push token say,
    is failed); ``queued`` while the job waits for a worker, a retry, or the end of a
    provider's commit."""
    if state is not None and state.clicked_at is not None:
        return "clicked"
    if state is not None and state.delivered_at is not None:
        return "delivered"
    if record.status == "failed":
        return "failed"
    if outcome is not None and outcome.status == "sent":
        return "sent"
    if outcome is not None and outcome.status == "failed":
        return "failed"
    return "sent" if record.status == "sent" else "queued"


def public_push(
    record: NotificationRecord, outcome: DeliveryOutcome | None, state: PushState | None
) -> PushNotificationPublic:
    final = outcome if outcome is not None and outcome.status != "committing" else None
    error = record.error or (final.error if final is not None else None)
    changed = [record.updated_at, final.at if final else None, state.updated_at if state else None]
    return PushNotificationPublic(
        id=record.id,
        # The public notification id is the send's id, as on the feed.
        notification_id=record.send_id,
        batch_id=record.batch_id,
        campaign_id=record.campaign_id,
        receiver=record.uid,
        channel_type=record.channel_type,
        channel_id=record.channel_id,
        template_id=record.template_id,
        template_version=record.template_version,
        content=record.content,
        tag=record.tag,
        status=push_status(record, outcome, state),
        code=error.code if error is not None else None,
        message=error.message if error is not None else None,
        sent_at=final.at if final is not None and final.status == "sent" else None,
        delivered_at=state.delivered_at if state else None,
        clicked_at=state.clicked_at if state else None,
        engaged_at=state.engaged_at if state else None,
        engagement_topics=[e.topic for e in state.engagements if e.topic] if state else [],
        created_at=record.created_at,
        updated_at=max(at for at in changed if at is not None),
    )
