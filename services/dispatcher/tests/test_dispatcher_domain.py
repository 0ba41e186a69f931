"""Pure rules: who fails, what is rendered and stored, what is reported."""

from __future__ import annotations

from clarion_dispatcher.fanout import domain
from clarion_dispatcher.feed.domain import feed_item_delivered, feed_item_read, public_feed_item
from clarion_dispatcher.notifications.domain import public_notification
from clarion_dispatcher.notifications.models import NotificationRecord
from clarion_dispatcher.testing import profile, send_command, template
from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.directory_replies import UserProfile
from clarion_shared.contracts.jobs import DeliveryJob
from clarion_shared.contracts.sends import VariableSpec
from clarion_shared.contracts.status import (
    ChunkDispatched,
    DeliveryFailed,
    FeedItemSent,
    NotificationCreated,
)
from clarion_shared.ids import derive_id

NOW = 1_700_000_100
APP = "app1"


def users(*uids: str) -> dict[str, UserProfile]:
    return {uid: profile(uid, email=f"{uid}@example.com") for uid in uids}


def test_dedupe_keeps_first_occurrence_and_order() -> None:
    assert domain.dedupe(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]


def test_in_app_receiver_gets_a_sent_record_and_a_feed_item_with_derived_ids() -> None:
    command = send_command(APP, "ntf1", ["alice"], tag="orders")
    plan = domain.plan_chunk(command, {"alice": profile("alice")}, NOW)

    (record,) = plan.records
    rid = derive_id(APP, "ntf1", "alice", "in-app")
    assert record.id == rid
    assert record.status == "sent"
    assert record.content == {"title": "Hi there", "body": "Your order A-1 shipped."}
    assert (record.batch_id, record.campaign_id) == (None, None)
    (item,) = plan.feed_items
    assert item.id == rid
    assert item.owner == f"{APP}:alice"
    assert item.notification_id == "ntf1"
    assert (item.read, item.status, item.sent_at) == (False, "sent", NOW)
    assert item.tag == "orders"
    assert plan.jobs == {}
    assert [r.model_dump(exclude_none=True) for r in plan.results] == [
        {"uid": "alice", "status": "sent"}
    ]


def test_other_channels_are_queued_as_jobs_with_contact_points_and_escaped_html() -> None:
    command = send_command(
        APP,
        "batch1",
        ["bob"],
        mode="batch",
        channels=("in_app", "email"),
        variables={"bob": {"name": "<b>Bob</b>"}},
    )
    plan = domain.plan_chunk(command, {"bob": profile("bob", email="bob@example.com")}, NOW)

    by_type = {r.channel_type: r for r in plan.records}
    assert by_type["email"].status == "queued"
    assert by_type["email"].batch_id == "batch1"
    (job,) = plan.jobs["email"]
    assert isinstance(job, DeliveryJob)
    assert job.job_id == by_type["email"].id
    assert job.contact == {"email": "bob@example.com"}
    assert job.content["html"] == "<p>Hi &lt;b&gt;Bob&lt;/b&gt;</p>"
    assert job.content["text"] == "Hi <b>Bob</b>"  # escaping only in the html part
    assert plan.feed_items[0].content["title"] == "Hi <b>Bob</b>"
    assert plan.feed_items[0].batch_id == "batch1"


def test_unknown_user_fails_on_every_channel_and_is_never_dropped() -> None:
    command = send_command(APP, "ntf2", ["ghost", "alice"], channels=("in_app", "email"))
    plan = domain.plan_chunk(command, {"alice": profile("alice")}, NOW)

    ghost_records = [r for r in plan.records if r.uid == "ghost"]
    assert len(ghost_records) == 2
    assert {r.status for r in ghost_records} == {"failed"}
    assert {r.error.code for r in ghost_records if r.error} == {domain.ERR_USER_NOT_FOUND}
    assert all(r.content is None for r in ghost_records)
    assert [i.receiver for i in plan.feed_items] == ["alice"]
    assert [j.uid for j in plan.jobs["email"]] == ["alice"]
    assert [(r.uid, r.status, r.code) for r in plan.results] == [
        ("ghost", "failed", domain.ERR_USER_NOT_FOUND),
        ("alice", "sent", None),
    ]
    (failed,) = [e for e in plan.events if isinstance(e, DeliveryFailed)]
    assert failed.uid == "ghost"
    assert failed.error.code == domain.ERR_USER_NOT_FOUND


def test_missing_required_variable_fails_that_recipient_only() -> None:
    command = send_command(
        APP, "ntf3", ["alice", "bob"], common_variables={}, variables={"bob": {"order": "B-7"}}
    )
    plan = domain.plan_chunk(command, users("alice", "bob"), NOW)

    assert [(r.uid, r.status, r.code) for r in plan.results] == [
        ("alice", "failed", domain.ERR_INVALID_VARIABLES),
        ("bob", "sent", None),
    ]
    assert plan.results[0].message is not None
    assert "order" in plan.results[0].message
    assert [i.receiver for i in plan.feed_items] == ["bob"]


def test_value_precedence_user_then_common_then_default_and_optional_tokens_stay() -> None:
    snapshot = template(
        variables=[
            VariableSpec(key="name", default_value="there"),
            VariableSpec(key="order", required=True),
            VariableSpec(key="coupon"),
        ]
    )
    snapshot = snapshot.model_copy(
        update={
            "channels": [
                snapshot.channels[0].model_copy(
                    update={"content": {"title": "{{name}} {{order}}", "body": "{{coupon}}"}}
                )
            ]
        }
    )
    command = send_command(
        APP,
        "ntf4",
        ["alice", "bob"],
        template_snapshot=snapshot,
        common_variables={"order": "C-1", "name": "friend"},
        variables={"alice": {"name": "Alice"}},
    )
    plan = domain.plan_chunk(command, users("alice", "bob"), NOW)

    contents = {i.receiver: i.content for i in plan.feed_items}
    assert contents["alice"] == {"title": "Alice C-1", "body": "{{coupon}}"}
    assert contents["bob"] == {"title": "friend C-1", "body": "{{coupon}}"}


def test_whole_image_token_becomes_the_object() -> None:
    snapshot = template(variables=[VariableSpec(key="banner", type="image")])
    snapshot = snapshot.model_copy(
        update={
            "channels": [
                snapshot.channels[0].model_copy(
                    update={"content": {"title": "t", "body": "b", "image": "{{banner}}"}}
                )
            ]
        }
    )
    banner: JsonObject = {"url": "https://example.com/b.png", "width": 10, "height": 20}
    command = send_command(
        APP, "ntf5", ["alice"], template_snapshot=snapshot, common_variables={"banner": banner}
    )
    plan = domain.plan_chunk(command, users("alice"), NOW)
    assert plan.feed_items[0].content["image"] == banner


def test_events_have_derived_ids_in_a_stable_order_and_the_summary_counts() -> None:
    command = send_command(APP, "ntf6", ["alice", "ghost"], chunk=2, chunks=3)
    plan = domain.plan_chunk(command, users("alice"), NOW)
    again = domain.plan_chunk(command, users("alice"), NOW + 50)

    assert [type(e) for e in plan.events] == [
        NotificationCreated,
        NotificationCreated,
        FeedItemSent,
        DeliveryFailed,
        ChunkDispatched,
    ]
    assert [e.event_id for e in plan.events] == [e.event_id for e in again.events]
    assert len({e.event_id for e in plan.events}) == len(plan.events)
    created = plan.events[0]
    assert isinstance(created, NotificationCreated)
    assert created.event_id == derive_id(created.notification_id, "notification_created")
    feed_sent = plan.events[2]
    assert isinstance(feed_sent, FeedItemSent)
    assert feed_sent.feed_item["receiver"] == "alice"
    assert feed_sent.feed_item["notificationId"] == "ntf6"
    summary = plan.events[-1]
    assert isinstance(summary, ChunkDispatched)
    assert (summary.chunk, summary.chunks, summary.total) == (2, 3, 2)
    assert (summary.sent, summary.failed) == (1, 1)


def test_receivers_are_deduplicated_before_planning() -> None:
    command = send_command(APP, "ntf7", ["alice", "alice", "bob"])
    plan = domain.plan_chunk(command, users("alice", "bob"), NOW)
    assert plan.receivers == ["alice", "bob"]
    assert len(plan.records) == 2
    assert [r.position for r in plan.records] == [0, 1]


def test_public_notification_groups_receivers_in_send_order() -> None:
    command = send_command(APP, "ntf8", ["zed", "ghost", "amy"], channels=("in_app", "sms"))
    plan = domain.plan_chunk(command, users("zed", "amy"), NOW)
    shuffled: list[NotificationRecord] = list(reversed(plan.records))

    public = public_notification(shuffled)
    assert public is not None
    body = public.to_json()
    assert body["notificationId"] == "ntf8"
    assert (body["mode"], body["templateVersion"]) == ("realtime", 1)
    assert [r.uid for r in public.receivers] == ["zed", "ghost", "amy"]
    zed, ghost, _ = public.receivers
    assert [c.to_json() for c in zed.channels] == [
        {"channelType": "in_app", "channelId": "in-app", "status": "sent"},
        {"channelType": "sms", "channelId": "sms", "status": "queued"},
    ]
    assert ghost.channels[0].code == domain.ERR_USER_NOT_FOUND
    assert public_notification([]) is None


def test_feed_item_public_json_is_camel_case_with_every_field() -> None:
    plan = domain.plan_chunk(send_command(APP, "ntf9", ["alice"]), users("alice"), NOW)
    body = public_feed_item(plan.feed_items[0]).to_json()
    assert set(body) == {
        "id",
        "notificationId",
        "batchId",
        "campaignId",
        "receiver",
        "channelType",
        "channelId",
        "templateId",
        "templateVersion",
        "content",
        "tag",
        "status",
        "sentAt",
        "deliveredAt",
        "readAt",
        "templateCategory",
        "engagedAt",
        "engagementTopics",
        "createdAt",
        "updatedAt",
    }


def test_feed_transition_events_have_ids_derived_from_the_item() -> None:
    plan = domain.plan_chunk(send_command(APP, "ntf10", ["alice"]), users("alice"), NOW)
    item = plan.feed_items[0].model_copy(
        update={"read": True, "status": "read", "read_at": NOW, "delivered_at": NOW + 1}
    )
    event = feed_item_read(item)
    assert event.event_id == derive_id(item.id, "feed_item_read")
    assert event.occurred_at == NOW  # the stored time: a re-publish repeats it exactly
    assert feed_item_read(item) == event
    assert event.send_id == "ntf10"
    assert event.feed_item["status"] == "read"
    delivered = feed_item_delivered(item)
    assert delivered.event_id == derive_id(item.id, "feed_item_delivered")
    assert delivered.occurred_at == NOW + 1


def test_the_same_send_id_in_two_apps_gives_two_records() -> None:
    plans = [
        domain.plan_chunk(send_command(app, "same-id", ["alice"]), {"alice": profile("alice")}, NOW)
        for app in ("app-a", "app-b")
    ]
    assert plans[0].records[0].id != plans[1].records[0].id


def test_a_campaign_chunk_says_each_receivers_state_and_every_chunk_tallies_channels() -> None:
    command = send_command(
        APP, "cmp1", ["alice", "ghost", "bob"], mode="campaign", channels=("in_app", "email")
    )
    plan = domain.plan_chunk(command, users("alice", "bob"), NOW)

    summary = plan.events[-1]
    assert isinstance(summary, ChunkDispatched)
    assert summary.receivers is not None
    # bob's email waits for a worker: pending (shown as processing), not sent yet.
    assert [(r.uid, r.status, r.code) for r in summary.receivers] == [
        ("alice", "pending", None),
        ("ghost", "failed", domain.ERR_USER_NOT_FOUND),
        ("bob", "pending", None),
    ]
    assert [(t.channel_type, t.sent, t.failed, t.queued) for t in summary.channels] == [
        ("in_app", 2, 1, 0),
        ("email", 0, 1, 2),
    ]


def test_a_campaign_chunk_on_in_app_only_has_its_receivers_sent() -> None:
    command = send_command(APP, "cmp2", ["alice", "ghost"], mode="campaign")
    plan = domain.plan_chunk(command, users("alice"), NOW)

    summary = plan.events[-1]
    assert isinstance(summary, ChunkDispatched)
    assert summary.receivers is not None
    assert [(r.uid, r.status) for r in summary.receivers] == [
        ("alice", "sent"),
        ("ghost", "failed"),
    ]
    assert summary.receivers[1].message


def test_a_batch_chunk_does_not_carry_its_receivers() -> None:
    command = send_command(APP, "bat1", ["alice", "bob"], mode="batch")
    summary = domain.plan_chunk(command, users("alice", "bob"), NOW).events[-1]
    assert isinstance(summary, ChunkDispatched)
    assert summary.receivers is None
    assert [(t.channel_type, t.sent) for t in summary.channels] == [("in_app", 2)]
