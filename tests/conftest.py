"""End-to-end fixtures: the four real service processes on the real broker and database."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from clarion_shared.devstack import Stack, stack_env
from clarion_shared.testing.helpers import random_ref
from clarion_shared.testing.infra import InfraAddresses, repo_root

E2E_PORTS = {
    "api-gateway": 18080,
    "dispatcher": 18081,
    "webhook-emitter": 18082,
    "user-directory": 18083,
}
ADMIN_TOKEN = "e2e-admin-token"


@pytest.fixture(scope="session")
def stack(infra: InfraAddresses) -> Iterator[Stack]:
    log_dir = Path(os.environ.get("CLARION_E2E_LOG_DIR", repo_root() / ".local" / "logs" / "e2e"))
    db_name = random_ref("e2e").replace("-", "_")
    env = stack_env(
        infra.kafka_bootstrap_servers,
        infra.mongodb_url,
        db_name=db_name,
        ports=E2E_PORTS,
        admin_token=ADMIN_TOKEN,
    )
    with Stack(env=env, log_dir=log_dir, gateway_port=E2E_PORTS["api-gateway"]) as running:
        yield running


@pytest.fixture(scope="session")
def admin_token() -> str:
    return ADMIN_TOKEN


@pytest_asyncio.fixture(loop_scope="session")
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as http:
        yield http
