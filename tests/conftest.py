"""End-to-end fixtures: the four real service processes on the real broker and database."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from clarion_shared.devstack import Stack
from clarion_shared.testing.helpers import random_ref
from clarion_shared.testing.infra import InfraAddresses, repo_root

E2E_PORTS = {"gateway": 18080, "dispatcher": 18081, "webhooks": 18082, "directory": 18083}
ADMIN_TOKEN = "e2e-admin-token"


def stack_env(infra: InfraAddresses, db_name: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap_servers,
            "MONGODB_URL": infra.mongodb_url,
            "CLARION_LOG_JSON": "true",
            "CLARION_GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
            "CLARION_GATEWAY_DIRECTORY_URL": f"http://127.0.0.1:{E2E_PORTS['directory']}",
            "CLARION_GATEWAY_DISPATCHER_URL": f"http://127.0.0.1:{E2E_PORTS['dispatcher']}",
            "CLARION_GATEWAY_WEBHOOKS_URL": f"http://127.0.0.1:{E2E_PORTS['webhooks']}",
        }
    )
    for service, prefix in (
        ("gateway", "CLARION_GATEWAY_"),
        ("dispatcher", "CLARION_DISPATCHER_"),
        ("webhooks", "CLARION_WEBHOOKS_"),
        ("directory", "CLARION_DIRECTORY_"),
    ):
        env[f"{prefix}PORT"] = str(E2E_PORTS[service])
        env[f"{prefix}DB_NAME"] = db_name
    return env


@pytest.fixture(scope="session")
def stack(infra: InfraAddresses) -> Iterator[Stack]:
    log_dir = Path(os.environ.get("CLARION_E2E_LOG_DIR", repo_root() / ".local" / "logs" / "e2e"))
    db_name = random_ref("e2e").replace("-", "_")
    with Stack(
        env=stack_env(infra, db_name), log_dir=log_dir, gateway_port=E2E_PORTS["gateway"]
    ) as running:
        yield running


@pytest.fixture(scope="session")
def admin_token() -> str:
    return ADMIN_TOKEN


@pytest_asyncio.fixture(loop_scope="session")
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as http:
        yield http
