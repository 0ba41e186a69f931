"""End-to-end fixtures: the four real service processes on the real broker and database."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from clarion_devtools.devstack import Stack, stack_env
from clarion_devtools.fake_messaging import FakeMessaging
from clarion_devtools.fake_push import FakeFcm
from clarion_devtools.fake_push_apns import FakeApns
from clarion_devtools.fake_push_kit import Tls, self_signed
from clarion_devtools.helpers import random_ref
from clarion_devtools.infra import InfraAddresses, repo_root

# CLARION_E2E_PORT_BASE moves the five ports, so that two runs can share a machine.
_BASE = int(os.environ.get("CLARION_E2E_PORT_BASE", "18080"))
E2E_PORTS = {
    "api-gateway": _BASE,
    "dispatcher": _BASE + 1,
    "webhook-emitter": _BASE + 2,
    "user-directory": _BASE + 3,
    "delivery": _BASE + 4,  # the dispatcher's delivery role
}
ADMIN_TOKEN = "e2e-admin-token"
GATEWAY_IDEMPOTENCY_LEASE_S = 3
WEBHOOK_ENV = {
    "CLARION_WEBHOOK_RETRY_SCHEDULE": "1,1,1,2,2,2,3",
    "CLARION_WEBHOOKS_HEARTBEAT_S": "0.5",
    "CLARION_WEBHOOKS_DEAD_AFTER_S": "3",
}
# Delivery retries within seconds (first waits 0.25-0.5 s), a circuit that opens late.
DELIVERY_ENV = {
    "CLARION_DISPATCHER_DELIVERY_RETRY_BASE_S": "0.5",
    "CLARION_DISPATCHER_DELIVERY_RETRY_CAP_S": "4",
    "CLARION_DISPATCHER_DELIVERY_MAX_ATTEMPTS": "12",
    "CLARION_DISPATCHER_DELIVERY_CIRCUIT_FAILURES": "50",
    "CLARION_DISPATCHER_DELIVERY_CIRCUIT_COOLDOWN_S": "1",
}


LOG_TAIL_LINES = 60


def e2e_log_dir() -> Path:
    return Path(os.environ.get("CLARION_E2E_LOG_DIR", repo_root() / ".local" / "logs" / "e2e"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed end-to-end test shows the tail of each service's log in its report.

    CI keeps only pytest's output, and the clone with the log files is gone after it.
    """
    report = yield
    if report.when == "call" and report.failed and "stack" in getattr(item, "fixturenames", ()):
        for log in sorted(e2e_log_dir().glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            report.sections.append((f"{log.name} (last {len(lines)} lines)", "\n".join(lines)))
    return report


@pytest.fixture(scope="session")
def push_tls() -> Tls:
    """The certificate of the tests' local push servers (``fake_push``), which the
    stack's delivery workers trust (``CLARION_DISPATCHER_DELIVERY_CA_FILE``)."""
    return self_signed(e2e_log_dir() / "push-tls")


@pytest.fixture(scope="session")
def stack(infra: InfraAddresses, push_tls: Tls) -> Iterator[Stack]:
    log_dir = e2e_log_dir()
    db_name = random_ref("e2e").replace("-", "_")
    env = stack_env(
        infra.kafka_bootstrap_servers,
        infra.mongodb_url,
        db_name=db_name,
        ports=E2E_PORTS,
        admin_token=ADMIN_TOKEN,
        topic_prefix=f"{db_name}.",
    )
    # A retry after a gateway crash takes the dead request's Idempotency-Key over after
    # this lease; the default minute would only slow the crash test down.
    env["CLARION_GATEWAY_IDEMPOTENCY_LEASE_S"] = str(GATEWAY_IDEMPOTENCY_LEASE_S)
    # Webhook retries in seconds, and a killed emitter's work adopted within seconds.
    env.update(WEBHOOK_ENV)
    env.update(DELIVERY_ENV)
    env["CLARION_DISPATCHER_DELIVERY_CA_FILE"] = str(push_tls.certfile)
    with Stack(
        env=env, log_dir=log_dir, gateway_port=E2E_PORTS["api-gateway"], own_topics=True
    ) as running:
        yield running


@pytest.fixture(scope="session")
def admin_token() -> str:
    return ADMIN_TOKEN


@pytest.fixture(scope="session")
def e2e_ports() -> dict[str, int]:
    """The session stack's ports (a test's own stack picks others from these)."""
    return dict(E2E_PORTS)


@pytest.fixture(scope="session")
def e2e_logs() -> Path:
    return e2e_log_dir()


@pytest.fixture(scope="session")
def dispatcher_url(stack: Stack) -> str:
    """The dispatcher's own port: its /metrics (open) show what it holds."""
    return f"http://127.0.0.1:{E2E_PORTS['dispatcher']}"


@pytest_asyncio.fixture(loop_scope="session")
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as http:
        yield http


@dataclass
class Providers:
    """Local FCM, APNs and messaging (Twilio, WhatsApp, custom) servers of one test."""

    fcm: FakeFcm
    apns: FakeApns
    messaging: FakeMessaging


@pytest_asyncio.fixture(loop_scope="session")
async def providers(push_tls: Tls) -> AsyncIterator[Providers]:
    fcm = FakeFcm("clarion-e2e", push_tls)
    apns = FakeApns(push_tls)
    messaging = FakeMessaging()
    await asyncio.gather(fcm.server.start(), apns.server.start(), messaging.start())
    yield Providers(fcm, apns, messaging)
    await asyncio.gather(fcm.server.stop(), apns.server.stop(), messaging.stop())
