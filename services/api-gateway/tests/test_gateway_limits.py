"""Limits of sends and templates (issue 6, item 4): variable values, one receiver's
variables, template content per channel and whole, and batch records cut by bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from clarion_gateway.sends import domain as send_domain
from clarion_gateway.testing import AUTH, Harness, gateway_harness, make_settings
from clarion_shared.strict_input import DEFAULT_MAX_BODY_BYTES

SEND = "/v3/campaigns/notifications/messages"
TEMPLATES = "/v3/campaigns/templates"
BROKER_DEFAULT_MAX = 1_048_588  # Kafka's message.max.bytes default


async def _ready(harness: Harness) -> None:
    await harness.create_channel(name="Feed", channelId="feed")
    await harness.create_template(templateId="order")


def _refused(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 400, response.text[:500]
    error = response.json()["error"]
    assert error["code"] == "ERR_VALIDATION"
    details: list[dict[str, Any]] = error["details"]
    assert error["devMessage"].endswith(f"({details[0]['field']})")
    return details


# ---------------------------------------------------------------- variables


async def test_a_variable_value_over_the_limit_is_refused_naming_it(harness: Harness) -> None:
    await _ready(harness)
    response = await harness.client.post(
        SEND,
        json={
            "templateId": "order",
            "receivers": ["u1", "u2"],
            "variables": {"u1": {"name": "Ann"}, "u2": {"name": "x" * 9_000}},
        },
        headers=AUTH,
    )
    assert [d["field"] for d in _refused(response)] == ["variables.u2.name"]
    assert harness.commands.sends == []


async def test_one_receivers_variables_over_the_limit_are_refused(harness: Harness) -> None:
    await _ready(harness)
    many = {f"k{i}": "v" * 4_000 for i in range(10)}  # each value fits, the whole does not
    response = await harness.client.post(
        SEND,
        json={"templateId": "order", "receivers": ["u1"], "variables": {"u1": many}},
        headers=AUTH,
    )
    assert [d["field"] for d in _refused(response)] == ["variables.u1"]
    assert harness.commands.sends == []


async def test_the_send_limits_are_the_settings() -> None:
    async with gateway_harness(make_settings(variable_max_bytes=10)) as harness:
        await _ready(harness)
        ok = await harness.client.post(
            SEND,
            json={"templateId": "order", "receivers": ["u1"], "variables": {"u1": {"name": "A"}}},
            headers=AUTH,
        )
        assert ok.status_code == 200, ok.text
        refused = await harness.client.post(
            SEND,
            json={
                "templateId": "order",
                "receivers": ["u1"],
                "variables": {"u1": {"name": "y" * 20}},
            },
            headers=AUTH,
        )
        assert _refused(refused)[0]["field"] == "variables.u1.name"


# ---------------------------------------------------------------- batch records by bytes


async def test_heavy_variables_cut_batch_records_by_bytes(harness: Harness) -> None:
    """2,000 receivers with ~2 KB of variables each: 500 a record would be ~1 MB, so
    records are cut earlier, every one under 512 KiB, receivers in order."""
    await _ready(harness)
    receivers = [f"user-{i}" for i in range(2_000)]
    variables = {uid: {"name": uid + "-" + "n" * 2_000} for uid in receivers}
    response = await harness.client.post(
        SEND,
        json={"templateId": "order", "receivers": receivers, "variables": variables},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    commands = harness.commands.sends
    sizes = [len(c.to_bytes()) for c in commands]
    assert max(sizes) <= 512 * 1024
    assert len(commands) > 4  # more than by count alone
    assert all(len(c.receivers) < 500 for c in commands)
    assert [uid for c in commands for uid in c.receivers] == receivers
    assert all(c.variables == {uid: variables[uid] for uid in c.receivers} for c in commands)
    assert [(c.chunk, c.chunks) for c in commands] == [
        (i, len(commands)) for i in range(len(commands))
    ]


async def test_a_10000_receiver_send_at_the_limits_fits_body_and_records(
    harness: Harness,
) -> None:
    """The largest send: 10,000 receivers with per-user variables fits the 8 MiB body,
    and no record nears the broker's 1 MB, even with a template at its limit."""
    await harness.create_channel(name="Feed", channelId="feed")
    await harness.create_template(
        templateId="order",
        channels=[
            {"channelType": "in_app", "content": {"title": "Hi {{name}}", "body": "b" * 60_000}}
        ],
    )
    receivers = [f"customer-{i:05d}" for i in range(10_000)]
    variables = {uid: {"name": f"Customer {uid}", "order": f"ORD-{uid}"} for uid in receivers}
    body = json.dumps({"templateId": "order", "receivers": receivers, "variables": variables})
    assert len(body) < DEFAULT_MAX_BODY_BYTES
    response = await harness.client.post(
        SEND, content=body, headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["total"] == 10_000
    commands = harness.commands.sends
    assert max(len(c.to_bytes()) for c in commands) <= 512 * 1024 < BROKER_DEFAULT_MAX
    assert sum(len(c.receivers) for c in commands) == 10_000


def test_chunks_by_count_and_bytes() -> None:
    uids = [f"u{i}" for i in range(10)]
    variables: send_domain.Variables = {uid: {"v": "x" * 90} for uid in uids}
    # Each receiver with its variables costs ~115 bytes.
    by_bytes = send_domain.chunk_receivers(uids, variables, 100, 300)
    assert [len(c) for c in by_bytes] == [2, 2, 2, 2, 2]
    assert send_domain.chunk_receivers(uids, {}, 4, 10_000) == [
        tuple(uids[0:4]),
        tuple(uids[4:8]),
        tuple(uids[8:]),
    ]
    # A receiver heavier than the budget is never split: it travels alone.
    heavy: send_domain.Variables = {**variables, "u3": {"v": "x" * 1_000}}
    parts = send_domain.chunk_receivers(uids, heavy, 100, 300)
    assert ("u3",) in parts
    assert [u for p in parts for u in p] == uids
    assert send_domain.chunk_receivers([], {}, 10, 10) == []


def test_settings_refuse_a_chunk_budget_that_cannot_hold_a_template_and_a_receiver() -> None:
    with pytest.raises(ValidationError, match="BATCH_CHUNK_MAX_BYTES"):
        make_settings(batch_chunk_max_bytes=128 * 1024, template_max_bytes=128 * 1024)
    with pytest.raises(ValidationError):
        make_settings(batch_chunk_max_bytes=1_000_000)  # too near the broker's 1 MB
    assert make_settings().batch_chunk_max_bytes == 512 * 1024


# ---------------------------------------------------------------- templates


def _channels(**sizes: int) -> list[dict[str, Any]]:
    contents = {
        "in_app": lambda n: {"title": "t", "body": "b" * n},
        "email": lambda n: {"subject": "s", "text": "e" * n},
        "sms": lambda n: {"text": "s" * n},
    }
    return [{"channelType": kind, "content": contents[kind](n)} for kind, n in sizes.items()]


async def test_a_channel_content_over_the_limit_is_refused_naming_it(harness: Harness) -> None:
    response = await harness.client.post(
        TEMPLATES,
        json={"name": "Big", "channels": _channels(in_app=100, email=70_000)},
        headers=AUTH,
    )
    details = _refused(response)
    assert [(d["field"], d.get("channelType")) for d in details] == [
        ("channels.1.content", "email")
    ]


async def test_a_whole_template_over_the_limit_is_refused(harness: Harness) -> None:
    response = await harness.client.post(
        TEMPLATES,
        json={"name": "Big", "channels": _channels(in_app=50_000, email=50_000, sms=40_000)},
        headers=AUTH,
    )
    assert [d["field"] for d in _refused(response)] == ["channels"]
    assert (await harness.client.get(f"{TEMPLATES}/big", headers=AUTH)).status_code == 404


async def test_edits_are_held_to_the_template_limits(harness: Harness) -> None:
    template = await harness.create_template(templateId="news", approve=False)
    path = f"{TEMPLATES}/{template['templateId']}"
    too_big = {"title": "t", "body": "b" * 70_000}
    put = await harness.client.put(
        path, json={"channels": [{"channelType": "in_app", "content": too_big}]}, headers=AUTH
    )
    assert _refused(put)[0]["field"] == "channels.0.content"
    one = await harness.client.put(
        f"{path}/channels/in_app", json={"content": too_big}, headers=AUTH
    )
    assert _refused(one)[0]["field"] == "content"
    # Three channels each within the limit: the third pushes the whole over it.
    for kind, content in (
        ("in_app", {"title": "t", "body": "b" * 60_000}),
        ("email", {"subject": "s", "text": "e" * 60_000}),
    ):
        ok = await harness.client.put(
            f"{path}/channels/{kind}", json={"content": content}, headers=AUTH
        )
        assert ok.status_code == 200, ok.text[:300]
    whole = await harness.client.put(
        f"{path}/channels/sms", json={"content": {"text": "s" * 20_000}}, headers=AUTH
    )
    assert [d["field"] for d in _refused(whole)] == ["content"]
    version = await harness.client.post(
        f"{path}/versions",
        json={"channels": _channels(in_app=60_000, email=60_000, sms=60_000)},
        headers=AUTH,
    )
    assert _refused(version)[0]["field"] == "channels"
    stored = (await harness.client.get(path, headers=AUTH)).json()["data"]
    assert [c["channelType"] for c in stored["channels"]] == ["in_app", "email"]
    assert len(stored["versions"]) == 1


async def test_the_template_limits_are_the_settings() -> None:
    async with gateway_harness(make_settings(template_channel_max_bytes=100)) as harness:
        response = await harness.client.post(
            TEMPLATES, json={"name": "Small", "channels": _channels(in_app=200)}, headers=AUTH
        )
        assert _refused(response)[0]["field"] == "channels.0.content"
