"""Every topic has a contract; examples of each contract validate and round-trip."""

from __future__ import annotations

import pytest

from clarion_shared.contracts.authoring_changes import AuthoringChanged
from clarion_shared.contracts.base import Contract, ErrorInfo
from clarion_shared.contracts.config_channels import ChannelConfig
from clarion_shared.contracts.config_webhooks import WebhookConfig
from clarion_shared.contracts.directory_lookups import LookupUsers
from clarion_shared.contracts.directory_replies import UserProfile, UsersResolved
from clarion_shared.contracts.jobs import DeliveryJob
from clarion_shared.contracts.replies import ReceiverResult, SendResult
from clarion_shared.contracts.sends import (
    ReplyTo,
    SendNotification,
    TemplateChannel,
    TemplateSnapshot,
)
from clarion_shared.contracts.status import (
    ChunkDispatched,
    DeliveryFailed,
    status_event_adapter,
)
from clarion_shared.contracts.users_changes import UsersChanged
from clarion_shared.contracts.users_events import PresenceChanged, user_event_adapter
from clarion_shared.settings import InfraSettings
from clarion_shared.topics import Topics

TOPICS = Topics()
REGISTRY = TOPICS.registry()

EXAMPLES: list[Contract] = [
    SendNotification(
        app_id="app",
        send_id="ntf_1",
        mode="realtime",
        template=TemplateSnapshot(
            template_id="t",
            version=1,
            channels=[TemplateChannel(channel_type="in_app", channel_id="c", content={"x": 1})],
        ),
        receivers=["a"],
        reply_to=ReplyTo(topic="clarion.replies", request_id="r"),
        created_at=1,
    ),
    SendResult(request_id="r", send_id="s", receivers=[ReceiverResult(uid="a", status="sent")]),
    LookupUsers(request_id="r", reply_topic="clarion.directory.replies", app_id="a", uids=["u"]),
    UsersResolved(request_id="r", app_id="a", users=[UserProfile(uid="u")], missing=["v"]),
    PresenceChanged(app_id="a", uid="u", status="online", occurred_at=1),
    UsersChanged(app_id="a", uids=["u", "v"], occurred_at=1),
    AuthoringChanged(app_id="a", occurred_at=1),
    DeliveryJob(
        job_id="j",
        app_id="a",
        send_id="s",
        uid="u",
        channel_type="push",
        channel_id="c",
        content={},
        created_at=1,
    ),
    DeliveryFailed(
        event_id="e",
        app_id="a",
        send_id="s",
        mode="batch",
        occurred_at=1,
        uid="u",
        error=ErrorInfo(code="ERR_USER_NOT_FOUND", message="no"),
    ),
    ChunkDispatched(
        event_id="e",
        app_id="a",
        send_id="s",
        mode="batch",
        occurred_at=1,
        chunk=0,
        chunks=1,
        total=1,
        sent=1,
        failed=0,
    ),
    ChannelConfig(
        app_id="a", channel_id="c", name="n", channel_type="in_app", enabled=True, updated_at=1
    ),
    WebhookConfig(
        app_id="a",
        webhook_id="w",
        name="n",
        url="http://127.0.0.1/x",
        triggers=["after_feed_item_sent"],
        enabled=True,
        signing_secret="whsec_x",
        updated_at=1,
    ),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_examples_round_trip(message: Contract) -> None:
    again = type(message).model_validate_json(message.to_bytes())
    assert again == message


def test_unions_pick_the_right_model() -> None:
    event = DeliveryFailed(
        event_id="e",
        app_id="a",
        send_id="s",
        mode="realtime",
        occurred_at=1,
        uid="u",
        error=ErrorInfo(code="X", message="y"),
    )
    assert status_event_adapter.validate_json(event.to_bytes()) == event
    presence = PresenceChanged(app_id="a", uid="u", status="offline", occurred_at=2)
    assert user_event_adapter.validate_json(presence.to_bytes()) == presence


def test_unknown_fields_are_ignored_within_a_version() -> None:
    raw = b'{"request_id":"r","send_id":"s","added_later":true}'
    assert SendResult.model_validate_json(raw).request_id == "r"


def test_registry_names_every_topic_once_with_its_dlq() -> None:
    names = TOPICS.all_names()
    assert len(names) == len(set(names))
    for spec in REGISTRY.values():
        assert spec.producers
        assert spec.consumers
        assert spec.contract is not None
        if spec.dlq:
            assert spec.dlq in names
    assert TOPICS.jobs("in_app") not in names  # in-app is written by the fan-out itself
    for channel_type in ("push", "email", "sms", "custom", "whatsapp"):
        assert REGISTRY[TOPICS.jobs(channel_type)].dlq in names


def test_every_contract_module_is_registered() -> None:
    registered = {getattr(spec.contract, "__module__", None) for spec in REGISTRY.values()}
    # Annotated unions are registered through their adapters' modules.
    registered |= {"clarion_shared.contracts.users_events", "clarion_shared.contracts.status"}
    for message in EXAMPLES:
        assert type(message).__module__ in registered


def test_topic_names_carry_the_namespace_of_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert TOPICS.sends == "clarion.sends"
    blue = Topics("blue.")
    assert blue.sends == "blue.clarion.sends"
    assert blue.jobs("email") == "blue.clarion.jobs.email"
    assert all(name.startswith("blue.clarion.") for name in blue.all_names())
    assert set(blue.registry()) == {f"blue.{name}" for name in REGISTRY}
    # The prefix is a setting like any other, read when the settings are built.
    monkeypatch.setenv("CLARION_TOPIC_PREFIX", "green.")
    assert Topics(InfraSettings().topic_prefix).status == "green.clarion.status"
