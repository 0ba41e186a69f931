"""A scheduled campaign with two gateway processes and two dispatchers, as a scaled-out
deployment runs them: both gateways' schedulers see it due at the same second, and it
is still sent once (issue 8, item 3): one send in the gateways' logs, one feed item per
recipient, one completion event."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient, MongoClient

from clarion_devtools.devstack import Stack, stack_env
from clarion_devtools.helpers import random_ref, wait_until
from clarion_devtools.infra import InfraAddresses

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CAMPAIGNS = "/v3/campaigns/campaigns"
USERS = [f"fan-{i}" for i in range(40)]


@pytest.fixture(scope="module")
def replicated(
    infra: InfraAddresses, admin_token: str, e2e_ports: dict[str, int], e2e_logs: Path
) -> Iterator[Stack]:
    """Its own stack, on free ports from 20 above the session stack's (a replica sits
    100 above its service; a base in the ephemeral range may meet a client's port)."""
    db_name = random_ref("e2e_replicas").replace("-", "_")
    offset = _free_offset(e2e_ports, first=20)
    ports = {service: port + offset for service, port in e2e_ports.items()}
    env = stack_env(
        infra.kafka_bootstrap_servers,
        infra.mongodb_url,
        db_name=db_name,
        ports=ports,
        admin_token=admin_token,
        topic_prefix=f"{db_name}.",
    )
    with Stack(
        env=env,
        log_dir=e2e_logs / "replicas",
        gateway_port=ports["api-gateway"],
        own_topics=True,
        own_databases=True,
        replicas={"api-gateway": 2, "dispatcher": 2},
    ) as running:
        yield running
    # A throwaway stack leaves no database behind (Stack.own_databases).
    client: MongoClient[dict[str, Any]]
    with MongoClient(infra.mongodb_url) as client:
        left = [n for n in client.list_database_names() if n.startswith(db_name)]
    assert not left, left


def _free_offset(ports: dict[str, int], first: int) -> int:
    """The first offset from ``first`` (in steps of 5) at which every port of the stack
    and of its replicas can be bound now."""
    for offset in range(first, first + 500, 5):
        wanted = [p + offset for p in ports.values()]
        wanted += [ports["api-gateway"] + offset + 100, ports["dispatcher"] + offset + 100]
        if all(_bindable(port) for port in wanted):
            return offset
    raise RuntimeError(f"no free ports above {ports}")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def _feed_items(stack: Stack, campaign_id: str) -> list[str]:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.env["MONGODB_URL"])
    try:
        feed = mongo[stack.env["CLARION_DISPATCHER_DB_NAME"]]["feed_items"]
        return [doc["receiver"] async for doc in feed.find({"campaign_id": campaign_id})]
    finally:
        await mongo.close()


async def _prepared(client: httpx.AsyncClient, admin_token: str) -> dict[str, str]:
    created = await client.post(
        "/admin/apps",
        json={"name": random_ref("replicas")},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert created.status_code == 201, created.text
    auth = {"apikey": created.json()["data"]["apiKey"]}
    for path, body in (
        ("/v3/campaigns/channels", {"name": "Feed", "type": "in_app", "enabled": True}),
        (
            "/v3/campaigns/templates",
            {
                "name": "Drop",
                "templateId": "drop",
                "status": "approved",
                "channels": [
                    {
                        "channelType": "in_app",
                        "content": {"title": "New drop", "body": "Open the app"},
                    }
                ],
            },
        ),
        ("/v3/users/import", {"users": [{"uid": uid, "name": uid} for uid in USERS]}),
    ):
        response = await client.post(path, json=body, headers=auth)
        assert response.status_code in (200, 201), response.text
    return auth


async def test_two_gateways_send_a_scheduled_campaign_once(
    replicated: Stack, admin_token: str
) -> None:
    async with httpx.AsyncClient(base_url=replicated.gateway_url, timeout=30) as client:
        auth = await _prepared(client, admin_token)
        created = await client.post(
            CAMPAIGNS,
            json={"name": "Drop", "templateId": "drop", "templateVersion": 1},
            headers=auth,
        )
        campaign_id = created.json()["data"]["campaignId"]
        url = f"{CAMPAIGNS}/{campaign_id}"
        added = await client.post(f"{url}/recipients", json={"userIds": USERS}, headers=auth)
        assert added.status_code == 201, added.text
        at = int(time.time()) + 3
        scheduled = await client.post(f"{url}/schedule", json={"scheduledAt": at}, headers=auth)
        assert scheduled.status_code == 200, scheduled.text

        async def completed() -> dict[str, Any] | None:
            data: dict[str, Any] = (await client.get(url, headers=auth)).json()["data"]
            return data if data["status"] == "completed" else None

        done = await wait_until(completed, timeout_s=60, what="the campaign's completion")

    assert (done["totalTargets"], done["sentCount"], done["failedCount"]) == (40, 40, 0)
    assert done["startedAt"] >= at
    assert sorted(await _feed_items(replicated, campaign_id)) == sorted(USERS)
    [event] = await replicated.completions(campaign_id)
    assert (event["mode"], event["status"], event["sent"]) == ("campaign", "completed", 40)
    # Both gateways were up and looking each second; one of them sent it.
    assert replicated.log_dir is not None
    sends = {
        name: (replicated.log_dir / f"{name}.log").read_text().count('"campaign.sent"')
        for name in replicated.process_names("api-gateway")
    }
    assert sorted(sends.values()) == [0, 1], sends
    assert all(proc.poll() is None for proc in replicated.processes.values())
