"""Direct sends over HTTP: realtime on a fake dispatcher, batch chunks, errors, idempotency."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from clarion_gateway.app import compose
from clarion_gateway.channels.kafka import KafkaChannelConfigs
from clarion_gateway.sends.kafka import KafkaSends
from clarion_gateway.testing import (
    AUTH,
    DEV_APP,
    FakeRequester,
    Harness,
    MemoryStore,
    RecordingCommands,
    fake_adapters,
    make_settings,
)
from clarion_shared import kafka
from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.contracts.config_channels import ChannelConfig
from clarion_shared.contracts.replies import ReceiverResult, SendResult
from clarion_shared.contracts.sends import SendNotification
from clarion_shared.kafka import BrokerConnection
from clarion_shared.topics import Topics

SEND = "/v3/campaigns/notifications/messages"


async def _ready(harness: Harness, **template: Any) -> dict[str, Any]:
    await harness.create_channel(name="Feed", channelId="feed")
    return await harness.create_template(templateId="order", **template)


async def test_realtime_send(harness: Harness) -> None:
    await _ready(harness)

    def reply(command: SendNotification) -> SendResult:
        return SendResult(
            request_id="-",
            send_id=command.send_id,
            receivers=[
                ReceiverResult(uid="u1", status="sent"),
                ReceiverResult(
                    uid="ghost", status="failed", code="ERR_USER_NOT_FOUND", message="no such user"
                ),
            ],
        )

    harness.reply = reply
    response = await harness.client.post(
        SEND,
        json={
            "templateId": "order",
            "receivers": ["u1", "ghost", "u1"],
            "variables": {"u1": {"name": "Ann"}, "stranger": {"name": "X"}},
            "tag": "orders",
        },
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["mode"] == "realtime"
    assert data["notificationId"].startswith("ntf_")
    assert data["channels"] == ["in_app"]
    assert data["receivers"] == [
        {"uid": "u1", "status": "sent"},
        {
            "uid": "ghost",
            "status": "failed",
            "code": "ERR_USER_NOT_FOUND",
            "message": "no such user",
        },
    ]
    [command] = harness.commands.sends
    assert command.mode == "realtime"
    assert command.app_id == DEV_APP
    assert command.send_id == data["notificationId"]
    assert command.receivers == ["u1", "ghost"]
    assert command.variables == {"u1": {"name": "Ann"}}
    assert command.tag == "orders"
    assert command.reply_to is not None
    assert command.reply_to.topic == harness.topics.replies
    assert command.template.template_id == "order"
    assert command.template.version == 1
    [channel] = command.template.channels
    assert (channel.channel_type, channel.channel_id) == ("in_app", "feed")
    assert [v.key for v in command.template.variable_schema] == ["name"]


async def test_realtime_timeout_is_504_with_the_notification_id(harness: Harness) -> None:
    await _ready(harness)
    harness.reply = lambda command: None
    response = await harness.client.post(
        SEND, json={"templateId": "order", "receivers": ["u1"]}, headers=AUTH
    )
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "ERR_TIMEOUT"
    assert error["details"]["notificationId"] == harness.commands.sends[0].send_id


@pytest.mark.parametrize(
    ("code", "status"),
    [("ERR_TEMPLATE_NOT_APPROVED", 400), ("ERR_UNAVAILABLE", 503), ("BOOM", 500)],
)
async def test_realtime_error_results(harness: Harness, code: str, status: int) -> None:
    await _ready(harness)
    harness.reply = lambda command: SendResult(
        request_id="-", send_id=command.send_id, error=ErrorInfo(code=code, message="m")
    )
    response = await harness.client.post(
        SEND, json={"templateId": "order", "receivers": ["u1"]}, headers=AUTH
    )
    assert response.status_code == status
    expected = code if status != 500 else "ERR_INTERNAL"
    assert response.json()["error"]["code"] == expected


async def test_batch_send_is_chunked(harness: Harness) -> None:
    await _ready(harness)
    receivers = [f"user-{i}" for i in range(1_201)]
    response = await harness.client.post(
        SEND,
        json={
            "templateId": "order",
            "receivers": receivers + receivers[:5],
            "variables": {"user-0": {"name": "A"}, "user-700": {"name": "B"}},
        },
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["mode"] == "batch"
    assert data["batchId"].startswith("bat_")
    assert (data["total"], data["channels"]) == (1_201, ["in_app"])
    commands = harness.commands.sends
    assert [(c.chunk, c.chunks, c.total, len(c.receivers)) for c in commands] == [
        (0, 3, 1_201, 500),
        (1, 3, 1_201, 500),
        (2, 3, 1_201, 201),
    ]
    assert all(c.send_id == data["batchId"] and c.mode == "batch" for c in commands)
    assert all(c.reply_to is None for c in commands)
    assert [uid for c in commands for uid in c.receivers] == receivers
    assert commands[0].variables == {"user-0": {"name": "A"}}
    assert commands[1].variables == {"user-700": {"name": "B"}}
    assert commands[2].variables == {}


async def test_eleven_receivers_is_a_batch(harness: Harness) -> None:
    await _ready(harness)
    response = await harness.client.post(
        SEND, json={"templateId": "order", "receivers": [f"u{i}" for i in range(11)]}, headers=AUTH
    )
    assert response.json()["data"]["mode"] == "batch"


async def test_template_errors(harness: Harness) -> None:
    await harness.create_channel(name="Feed")
    unknown = await harness.client.post(
        SEND, json={"templateId": "nope", "receivers": ["u1"]}, headers=AUTH
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "ERR_TEMPLATE_NOT_FOUND"
    await harness.create_template(templateId="draft", approve=False)
    draft = await harness.client.post(
        SEND, json={"templateId": "draft", "receivers": ["u1"]}, headers=AUTH
    )
    assert draft.status_code == 400
    assert draft.json()["error"]["code"] == "ERR_TEMPLATE_NOT_APPROVED"
    await harness.create_template(templateId="gone")
    await harness.client.delete("/v3/campaigns/templates/gone", headers=AUTH)
    archived = await harness.client.post(
        SEND, json={"templateId": "gone", "receivers": ["u1"]}, headers=AUTH
    )
    assert archived.json()["error"]["code"] == "ERR_TEMPLATE_NOT_APPROVED"


async def test_newest_approved_version_is_sent(harness: Harness) -> None:
    await _ready(harness)
    await harness.client.put(
        "/v3/campaigns/templates/order/channels/in_app",
        json={"content": {"title": "v2 {{name}}", "body": "draft"}},
        headers=AUTH,
    )
    await harness.client.post(SEND, json={"templateId": "order", "receivers": ["u1"]}, headers=AUTH)
    assert harness.commands.sends[-1].template.version == 1
    await harness.client.put(
        "/v3/campaigns/templates/order", json={"status": "approved"}, headers=AUTH
    )
    await harness.client.post(SEND, json={"templateId": "order", "receivers": ["u1"]}, headers=AUTH)
    sent = harness.commands.sends[-1].template
    assert sent.version == 2
    assert sent.channels[0].content["title"] == "v2 {{name}}"


async def test_channel_must_exist_and_be_enabled(harness: Harness) -> None:
    await harness.create_template(
        templateId="multi",
        channels=[
            {"channelType": "in_app", "content": {"title": "t", "body": "b"}},
            {"channelType": "sms", "channelId": "texts", "content": {"text": "t"}},
        ],
        variableSchema=[],
    )
    missing = await harness.client.post(
        SEND, json={"templateId": "multi", "receivers": ["u1"]}, headers=AUTH
    )
    assert missing.status_code == 400
    error = missing.json()["error"]
    assert error["code"] == "ERR_CHANNEL_NOT_FOUND"
    assert {d["channelType"] for d in error["details"]} == {"in_app", "sms"}
    await harness.create_channel(name="Feed", enabled=False)
    await harness.create_channel(name="Texts", channelId="texts", type="sms", enabled=True)
    disabled = await harness.client.post(
        SEND, json={"templateId": "multi", "receivers": ["u1"]}, headers=AUTH
    )
    assert disabled.json()["error"]["details"] == [
        {
            "channelType": "in_app",
            "channelId": None,
            "reason": "the app's in_app channels are all disabled",
        }
    ]
    # Narrowed to sms, the disabled in_app channel does not matter.
    narrowed = await harness.client.post(
        SEND, json={"templateId": "multi", "receivers": ["u1"], "channels": ["sms"]}, headers=AUTH
    )
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["data"]["channels"] == ["sms"]
    assert [c.channel_id for c in harness.commands.sends[-1].template.channels] == ["texts"]
    not_in_template = await harness.client.post(
        SEND, json={"templateId": "multi", "receivers": ["u1"], "channels": ["email"]}, headers=AUTH
    )
    assert not_in_template.status_code == 400
    assert not_in_template.json()["error"]["code"] == "ERR_VALIDATION"


@pytest.mark.parametrize(
    ("receivers", "code"),
    [
        ([], "ERR_VALIDATION"),
        (["ok", "not ok"], "ERR_VALIDATION"),
        ([f"u{i}" for i in range(10_001)], "ERR_TARGET_LIMIT_EXCEEDED"),
        ("u1", "ERR_VALIDATION"),
        ([1, 2], "ERR_VALIDATION"),
    ],
)
async def test_receiver_errors(harness: Harness, receivers: Any, code: str) -> None:
    await _ready(harness)
    response = await harness.client.post(
        SEND, json={"templateId": "order", "receivers": receivers}, headers=AUTH
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert harness.commands.sends == []


async def test_bad_receiver_indexes_are_listed(harness: Harness) -> None:
    await _ready(harness)
    response = await harness.client.post(
        SEND, json={"templateId": "order", "receivers": ["a", "b c", "d", "é"]}, headers=AUTH
    )
    details = response.json()["error"]["details"]
    assert [d["index"] for d in details["invalidReceivers"]] == [1, 3]


async def test_on_behalf_of_is_forbidden(harness: Harness) -> None:
    await _ready(harness)
    response = await harness.client.post(
        SEND,
        json={"templateId": "order", "receivers": ["u1"]},
        headers={**AUTH, "onbehalfof": "u1"},
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "ERR_FORBIDDEN"


async def test_broker_down_is_503_and_releases_the_idempotency_key(harness: Harness) -> None:
    await _ready(harness)
    harness.commands.fail_with = KafkaConnectionError()
    headers = {**AUTH, "Idempotency-Key": "k-503"}
    body = {"templateId": "order", "receivers": ["u1"]}
    down = await harness.client.post(SEND, json=body, headers=headers)
    assert down.status_code == 503
    assert down.json()["error"]["code"] == "ERR_UNAVAILABLE"
    harness.commands.fail_with = None
    retried = await harness.client.post(SEND, json=body, headers=headers)
    assert retried.status_code == 200
    assert len(harness.commands.sends) == 1


async def test_a_batch_retried_after_a_failure_keeps_its_id(harness: Harness) -> None:
    """Chunks a failed attempt did publish are sent again under the same batch id,
    which the dispatcher's derived record ids turn into a no-op."""
    await _ready(harness)
    body = {"templateId": "order", "receivers": [f"u{i}" for i in range(20)]}
    harness.commands.fail_with = KafkaConnectionError()
    headers = {**AUTH, "Idempotency-Key": "batch-retry"}
    assert (await harness.client.post(SEND, json=body, headers=headers)).status_code == 503
    harness.commands.fail_with = None
    first = await harness.client.post(SEND, json=body, headers=headers)
    other_key = await harness.client.post(
        SEND, json=body, headers={**AUTH, "Idempotency-Key": "another"}
    )
    no_key = await harness.client.post(SEND, json=body, headers=AUTH)

    batch_ids = {r.json()["data"]["batchId"] for r in (first, other_key, no_key)}
    assert len(batch_ids) == 3
    assert {c.send_id for c in harness.commands.sends} == batch_ids
    failed_attempt_id = harness.commands.attempted[0].send_id
    assert first.json()["data"]["batchId"] == failed_attempt_id


async def test_idempotent_send(harness: Harness) -> None:
    await _ready(harness)
    headers = {**AUTH, "Idempotency-Key": "send-1"}
    body = {"templateId": "order", "receivers": [f"u{i}" for i in range(20)]}
    first = await harness.client.post(SEND, json=body, headers=headers)
    # Same body, other key order: the same request.
    second = await harness.client.post(
        SEND,
        content=f'{{"receivers": {body["receivers"]!r}, "templateId": "order"}}'.replace("'", '"'),
        headers={**headers, "content-type": "application/json"},
    )
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert len(harness.commands.sends) == 1
    conflict = await harness.client.post(SEND, json={**body, "receivers": ["x"]}, headers=headers)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "ERR_CONFLICT"
    # Keys are per app and per key: another key sends again.
    third = await harness.client.post(
        SEND, json=body, headers={**AUTH, "Idempotency-Key": "send-2"}
    )
    assert third.json()["data"]["batchId"] != first.json()["data"]["batchId"]


async def test_validation_errors_are_replayed_too(harness: Harness) -> None:
    headers = {**AUTH, "Idempotency-Key": "bad-1"}
    body = {"templateId": "nope", "receivers": ["u1"]}
    first = await harness.client.post(SEND, json=body, headers=headers)
    await harness.create_template(templateId="nope")
    second = await harness.client.post(SEND, json=body, headers=headers)
    assert first.status_code == second.status_code == 400
    assert second.headers["Idempotent-Replayed"] == "true"


async def test_publishes_land_on_the_topics_with_test_broker() -> None:
    """The real Kafka adapter, on FastStream's in-memory broker."""
    settings = make_settings()
    topics = Topics(settings.topic_prefix)
    broker: KafkaBroker = kafka.make_broker(settings, "api-gateway-test")
    store = MemoryStore()
    commands = RecordingCommands()
    adapters = replace(
        fake_adapters(settings, store, commands, FakeRequester(commands, _never)),
        broker=BrokerConnection(broker),
        sends=KafkaSends(broker, topics),
        configs=KafkaChannelConfigs(broker, topics),
    )
    app = compose(settings, adapters)
    sends: list[tuple[bytes | None, SendNotification]] = []
    configs: list[ChannelConfig] = []

    @broker.subscriber(topics.sends)
    async def on_send(message: KafkaMessage) -> None:
        key = getattr(message.raw_message, "key", None)
        sends.append((key, SendNotification.model_validate_json(message.body)))

    @broker.subscriber(topics.config_channels)
    async def on_config(message: KafkaMessage) -> None:
        configs.append(ChannelConfig.model_validate_json(message.body))

    async with (
        TestKafkaBroker(broker),
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client,
    ):
        harness = Harness(app, client, store, commands, topics)
        await _ready(harness)
        response = await client.post(
            SEND,
            json={"templateId": "order", "receivers": [f"u{i}" for i in range(600)]},
            headers=AUTH,
        )
        assert response.status_code == 200, response.text
        batch_id = response.json()["data"]["batchId"]
    assert [c.channel_id for c in configs] == ["feed"]
    assert [(key, c.send_id, c.chunk, len(c.receivers)) for key, c in sends] == [
        (f"{batch_id}:0".encode(), batch_id, 0, 500),
        (f"{batch_id}:1".encode(), batch_id, 1, 100),
    ]


async def _never(command: SendNotification) -> SendResult | None:
    return None
