"""Batches at the gateway: registered with the dispatcher before they are published, and
their status and receivers passed on to it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from clarion_gateway.proxies.peers import Peers
from clarion_gateway.sends.registry import PeerBatchRegistry
from clarion_gateway.sends.service import RegistrationFailed
from clarion_gateway.testing import AUTH, DEV_APP, Harness
from clarion_shared.public.batches import BatchRegistration

SEND = "/v3/campaigns/notifications/messages"
BATCHES = "/v3/campaigns/notifications/batches"


async def _ready(harness: Harness) -> None:
    await harness.create_channel(name="Feed", channelId="feed")
    await harness.create_template(templateId="order")


async def _send(harness: Harness, receivers: list[str], **headers: str) -> httpx.Response:
    return await harness.client.post(
        SEND, json={"templateId": "order", "receivers": receivers}, headers={**AUTH, **headers}
    )


async def test_a_batch_is_registered_with_its_chunks_before_one_is_published(
    harness: Harness,
) -> None:
    await _ready(harness)
    published_at_registration: list[int] = []
    register = harness.registry.register

    async def spy(app_id: str, batch_id: str, batch: BatchRegistration) -> None:
        published_at_registration.append(len(harness.commands.attempted))
        await register(app_id, batch_id, batch)

    harness.registry.register = spy  # type: ignore[method-assign]
    receivers = [f"user-{i}" for i in range(1_201)]

    response = await _send(harness, receivers)

    assert response.status_code == 200, response.text
    batch_id = response.json()["data"]["batchId"]
    assert published_at_registration == [0]
    registration = harness.registry.registered[(DEV_APP, batch_id)]
    assert registration.total == 1_201
    assert registration.channels == ["in_app"]
    assert registration.created_at == harness.commands.sends[0].created_at
    # The chunks registered are the chunks published, receiver for receiver.
    assert registration.chunks == [command.receivers for command in harness.commands.sends]
    assert [len(chunk) for chunk in registration.chunks] == [500, 500, 201]


async def test_an_unreachable_dispatcher_is_503_and_nothing_is_published(
    harness: Harness,
) -> None:
    await _ready(harness)
    harness.registry.unreachable = True

    response = await _send(harness, [f"user-{i}" for i in range(20)])

    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "ERR_UNAVAILABLE"
    assert harness.commands.attempted == []
    assert harness.commands.sends == []


async def test_a_retried_batch_registers_the_same_batch_again(harness: Harness) -> None:
    await _ready(harness)
    harness.registry.unreachable = True
    receivers = [f"user-{i}" for i in range(20)]
    failed = await _send(harness, receivers, **{"Idempotency-Key": "k-1"})
    assert failed.status_code == 503
    harness.registry.unreachable = False

    retried = await _send(harness, receivers, **{"Idempotency-Key": "k-1"})

    assert retried.status_code == 200, retried.text
    assert harness.registry.calls == 2
    assert list(harness.registry.registered) == [(DEV_APP, retried.json()["data"]["batchId"])]


async def test_a_realtime_send_registers_nothing(harness: Harness) -> None:
    await _ready(harness)
    response = await _send(harness, ["u1", "u2"])
    assert response.status_code == 200, response.text
    assert harness.registry.calls == 0


# ------------------------------------------------------------- the HTTP adapter


def _registry(handler: Any) -> tuple[PeerBatchRegistry, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        result: httpx.Response = handler(request)
        return result

    peers = Peers.connect(
        {"dispatcher": "http://dispatcher", "directory": "http://d", "webhooks": "http://w"},
        5.0,
        httpx.MockTransport(record),
        internal_token="secret",
    )
    return PeerBatchRegistry(peers), seen


REGISTRATION = BatchRegistration(
    total=3, created_at=1_700_000_000, channels=["in_app"], chunks=[["a", "b"], ["c"]]
)


async def test_the_registry_puts_the_registration_to_the_dispatcher() -> None:
    registry, seen = _registry(lambda request: httpx.Response(200, json={"data": {}}))

    await registry.register("app 1", "bat_1", REGISTRATION)

    [request] = seen
    assert request.method == "PUT"
    assert request.url.raw_path == b"/internal/apps/app%201/batches/bat_1"
    assert request.headers["x-clarion-internal-token"] == "secret"
    assert json.loads(request.content) == {
        "total": 3,
        "createdAt": 1_700_000_000,
        "channels": ["in_app"],
        "chunks": [["a", "b"], ["c"]],
    }


@pytest.mark.parametrize(
    "answer",
    [
        lambda request: httpx.Response(500, json={"error": {"code": "ERR_INTERNAL"}}),
        lambda request: httpx.Response(400, json={"error": {"code": "ERR_VALIDATION"}}),
    ],
)
async def test_a_refused_registration_fails(answer: Any) -> None:
    registry, _ = _registry(answer)
    with pytest.raises(RegistrationFailed):
        await registry.register("app", "bat_1", REGISTRATION)


async def test_an_unreachable_dispatcher_fails_the_registration() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    registry, seen = _registry(refuse)
    with pytest.raises(RegistrationFailed):
        await registry.register("app", "bat_1", REGISTRATION)
    assert len(seen) == 2  # sent once more on a new connection, as a PUT may be


# ------------------------------------------------------------- the reads


async def test_the_batch_reads_go_to_the_dispatcher(harness: Harness) -> None:
    harness.peer = lambda request: httpx.Response(200, json={"data": {"seen": request.url.path}})

    status = await harness.client.get(f"{BATCHES}/bat_1", headers=AUTH)
    receivers = await harness.client.get(
        f"{BATCHES}/bat_1/receivers?status=failed&page=2&perPage=50", headers=AUTH
    )

    assert status.status_code == 200, status.text
    assert receivers.status_code == 200, receivers.text
    assert [(r.method, r.url.path, r.url.query) for r in harness.peer_requests] == [
        ("GET", f"/internal/apps/{DEV_APP}/batches/bat_1", b""),
        (
            "GET",
            f"/internal/apps/{DEV_APP}/batches/bat_1/receivers",
            b"status=failed&page=2&perPage=50",
        ),
    ]


async def test_a_batch_read_passes_the_owners_404_on(harness: Harness) -> None:
    harness.peer = lambda request: httpx.Response(
        404, json={"error": {"code": "ERR_NOT_FOUND", "message": "Batch not found."}}
    )
    response = await harness.client.get(f"{BATCHES}/bat_other", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ERR_NOT_FOUND"


@pytest.mark.parametrize("query", ["status=queued", "perPage=101", "page=0"])
async def test_a_bad_receivers_query_is_400_before_the_dispatcher(
    harness: Harness, query: str
) -> None:
    response = await harness.client.get(f"{BATCHES}/bat_1/receivers?{query}", headers=AUTH)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "ERR_VALIDATION"
    assert harness.peer_requests == []


async def test_a_batch_read_needs_the_apps_key(harness: Harness) -> None:
    response = await harness.client.get(f"{BATCHES}/bat_1", headers={"apikey": "wrong"})
    assert response.status_code == 401
    assert harness.peer_requests == []


async def test_the_batch_models_are_documented(harness: Harness) -> None:
    spec = (await harness.client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert set(schemas["BatchPublic"]["properties"]) == {
        "batchId",
        "status",
        "total",
        "sent",
        "delivered",
        "failed",
        "pending",
        "createdAt",
        "completedAt",
    }
    assert {"uid", "status", "code", "message"} == set(schemas["BatchReceiverPublic"]["properties"])
    receivers = spec["paths"][f"{BATCHES}/{{batch_id}}/receivers"]["get"]
    assert {p["name"] for p in receivers["parameters"]} >= {"status", "page", "perPage"}
