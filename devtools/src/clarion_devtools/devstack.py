"""Run the four services as local processes: ``make run`` and the end-to-end tests.

Starts user-directory, dispatcher, the dispatcher's delivery workers (its ``delivery``
role, a process of its own), webhook-emitter and api-gateway with the current
environment (plus per-service overrides), waits until the gateway's ``/readyz`` is 200
(which means Kafka, the database and the three other services are ready) and the
delivery process's too, and stops them all on exit. ``python -m clarion_devtools.devstack``
prints the URLs and the dev app's key and runs until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from clarion_shared.mongo import make_client
from clarion_shared.settings import InfraSettings
from clarion_shared.topics import Topics, delete_topics, ensure_topics

from .helpers import completions_of, notification_records
from .localinfra import LocalInfra

# The delivery process's port; by default the dispatcher's + 3 (8084 for ``make run``).
DELIVERY_PORT = "CLARION_DELIVERY_PORT"

SERVICES: tuple[tuple[str, str, str], ...] = (
    # name, module, port env var
    ("user-directory", "clarion_directory", "CLARION_DIRECTORY_PORT"),
    ("dispatcher", "clarion_dispatcher", "CLARION_DISPATCHER_PORT"),
    # The dispatcher's delivery role (CLARION_DISPATCHER_ROLE=delivery): see ``env_of``.
    ("delivery", "clarion_dispatcher", DELIVERY_PORT),
    ("webhook-emitter", "clarion_webhooks", "CLARION_WEBHOOKS_PORT"),
    ("api-gateway", "clarion_gateway", "CLARION_GATEWAY_PORT"),
)


# The dashboard's first operator of ``make run`` and of test stacks (API.md, Dashboard):
# documented, public, refused by a production gateway.
DEV_DASHBOARD_EMAIL = "admin@clarion.local"
DEV_DASHBOARD_PASSWORD = "clarion-dev-password"

SERVICE_PREFIXES: dict[str, str] = {
    "api-gateway": "CLARION_GATEWAY_",
    "dispatcher": "CLARION_DISPATCHER_",
    "webhook-emitter": "CLARION_WEBHOOKS_",
    "user-directory": "CLARION_DIRECTORY_",
}
# Each service's database is its own: <stack db name>_<suffix>.
DB_SUFFIXES: dict[str, str] = {
    "api-gateway": "gateway",
    "dispatcher": "dispatcher",
    "webhook-emitter": "webhooks",
    "user-directory": "directory",
}


def stack_env(
    kafka_bootstrap_servers: str,
    mongodb_url: str,
    *,
    db_name: str,
    ports: Mapping[str, int],
    admin_token: str,
    log_level: str = "INFO",
    topic_prefix: str = "",
    internal_token: str | None = None,
) -> dict[str, str]:
    """The environment of a stack of its own: ports, databases and peers' URLs.

    ``ports`` maps each service name (``api-gateway``, ...) to its port; tests and the
    benchmark use ports apart from ``make run``'s. ``topic_prefix`` gives the stack
    topics of its own (``CLARION_TOPIC_PREFIX``): see ``Stack``. ``internal_token`` is
    the secret of the services' internal APIs, one value for all four
    (``CLARION_INTERNAL_TOKEN``); by default a new random one per stack, so nothing but
    its own gateway can call its services.
    """
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
            "MONGODB_URL": mongodb_url,
            "CLARION_LOG_JSON": "true",
            "CLARION_LOG_LEVEL": log_level,
            "CLARION_GATEWAY_ADMIN_TOKEN": admin_token,
            "CLARION_GATEWAY_DIRECTORY_URL": f"http://127.0.0.1:{ports['user-directory']}",
            "CLARION_GATEWAY_DISPATCHER_URL": f"http://127.0.0.1:{ports['dispatcher']}",
            "CLARION_GATEWAY_WEBHOOKS_URL": f"http://127.0.0.1:{ports['webhook-emitter']}",
            # Upload URLs name the stack's own gateway.
            "CLARION_GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{ports['api-gateway']}",
            "CLARION_TOPIC_PREFIX": topic_prefix,
            "CLARION_INTERNAL_TOKEN": internal_token or secrets.token_urlsafe(32),
            # A local stack's webhook receivers listen on 127.0.0.1 (API.md's setting,
            # read by the gateway at registration and the emitter at delivery).
            "CLARION_WEBHOOKS_ALLOW_PRIVATE": "true",
        }
    )
    # The dashboard's first operator: the environment's, else the documented dev one.
    env.setdefault("CLARION_DASHBOARD_ADMIN_EMAIL", DEV_DASHBOARD_EMAIL)
    env.setdefault("CLARION_DASHBOARD_ADMIN_PASSWORD", DEV_DASHBOARD_PASSWORD)
    for service, prefix in SERVICE_PREFIXES.items():
        env[f"{prefix}PORT"] = str(ports[service])
        env[f"{prefix}DB_NAME"] = f"{db_name}_{DB_SUFFIXES[service]}"
        # Static group membership: a process restarted by the stack (or by the crash
        # test) takes its partitions back at once. The port keeps stacks apart.
        env[f"{prefix}GROUP_INSTANCE_ID"] = f"{service}-{ports[service]}"
    env[DELIVERY_PORT] = str(ports.get("delivery", ports["dispatcher"] + 3))
    return env


def delivery_port(env: Mapping[str, str]) -> int:
    if env.get(DELIVERY_PORT):
        return int(env[DELIVERY_PORT])
    return int(env.get("CLARION_DISPATCHER_PORT", "8081")) + 3


class NotReady(Exception):
    """The gateway answered /readyz with something else than 200."""


@dataclass
class Stack:
    """The four service processes; a context manager that always stops them.

    ``replicas`` runs more than one process of a service (``{"dispatcher": 2}``): the
    extra ones are named ``dispatcher#2``..., listen on the service's port + 100 * (n - 1)
    and join the same consumer groups under instance ids of their own, as N processes
    of a real deployment do. Peers and the gateway call the first one.

    ``own_topics``: the stack creates the topics of its namespace (the environment's
    ``CLARION_TOPIC_PREFIX``, which must be set) before starting and deletes them after
    stopping. So a throwaway stack (tests, benchmark) shares the broker with ``make run``
    and with other stacks without reading what they send, or sending them anything.

    ``own_databases``: the services' databases (the environment's ``*_DB_NAME``) are
    dropped after stopping, so runs of a throwaway stack (the benchmark's) do not pile up
    on the database server that ``make run`` and the tests share.
    """

    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    log_dir: Path | None = None
    gateway_port: int = 8080
    own_topics: bool = False
    own_databases: bool = False
    replicas: Mapping[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def start(self) -> None:
        """Start every service (and its replicas); each log file starts empty (restarts
        append to it)."""
        for name, module, _ in SERVICES:
            for process in self.process_names(name):
                if self.log_dir is not None:
                    (self.log_dir / f"{process}.log").unlink(missing_ok=True)
                self.start_one(process, module)

    def process_names(self, service: str) -> list[str]:
        """``service``, then its replicas' names (``service#2``, ...)."""
        count = max(1, self.replicas.get(service, 1))
        return [service] + [f"{service}#{n}" for n in range(2, count + 1)]

    def env_of(self, process: str) -> dict[str, str]:
        """The environment of one process: a replica's port and instance id are its own,
        and the delivery process is the dispatcher in its ``delivery`` role."""
        service, _, number = process.partition("#")
        if service == "delivery":
            port = delivery_port(self.env) + 100 * (int(number or 1) - 1)
            return {
                **self.env,
                "CLARION_DISPATCHER_ROLE": "delivery",
                "CLARION_DISPATCHER_PORT": str(port),
                "CLARION_DISPATCHER_GROUP_INSTANCE_ID": f"delivery-{port}",
            }
        if not number:
            return self.env
        prefix = SERVICE_PREFIXES[service]
        port = int(self.env[f"{prefix}PORT"]) + 100 * (int(number) - 1)
        return {
            **self.env,
            f"{prefix}PORT": str(port),
            f"{prefix}GROUP_INSTANCE_ID": f"{service}-{port}",
        }

    def start_one(self, name: str, module: str | None = None) -> None:
        service = name.partition("#")[0]
        module = module or next(m for n, m, _ in SERVICES if n == service)
        out: IO[bytes] | None = None  # None: inherit the terminal
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = (self.log_dir / f"{name}.log").open("ab")
        try:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", module],
                env=self.env_of(name),
                stdout=out,
                stderr=subprocess.STDOUT if out is not None else None,
                start_new_session=True,
            )
        finally:
            if out is not None:
                out.close()  # the child has its own descriptor

    def stop_one(self, name: str, sig: int = signal.SIGTERM, timeout_s: float = 15) -> None:
        proc = self.processes.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def stop(self) -> None:
        for name, _, _ in reversed(SERVICES):
            for process in reversed(self.process_names(name)):
                self.stop_one(process)

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Wait until the gateway's ``/readyz`` is 200 (every service is ready), and
        every replica's."""

        def ready() -> None:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {proc.returncode}")
            response = httpx.get(f"{self.gateway_url}/readyz", timeout=3)
            if response.status_code != 200:
                raise NotReady(response.text)
            for name in self.processes:
                service, _, number = name.partition("#")
                if number or service == "delivery":  # the gateway does not call it: ask it
                    prefix = SERVICE_PREFIXES.get(service, "CLARION_DISPATCHER_")
                    port = self.env_of(name)[f"{prefix}PORT"]
                    replica = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=3)
                    if replica.status_code != 200:
                        raise NotReady(f"{name}: {replica.text}")

        retrying = Retrying(
            stop=stop_after_delay(timeout_s),
            wait=wait_fixed(0.5),
            retry=retry_if_exception_type((NotReady, httpx.HTTPError)),
            reraise=True,
        )
        try:
            retrying(ready)
        except (NotReady, httpx.HTTPError) as exc:
            raise TimeoutError(f"the gateway was not ready after {timeout_s}s: {exc!r}") from exc

    @property
    def topics(self) -> Topics:
        return Topics(self.env.get("CLARION_TOPIC_PREFIX", ""))

    async def completions(self, send_id: str) -> list[dict[str, Any]]:
        """The ``BatchCompleted`` events of a batch or campaign on this stack's topic."""
        bootstrap = self.env["KAFKA_BOOTSTRAP_SERVERS"]
        return await completions_of(bootstrap, self.topics.status, send_id)

    async def notification_records(self, send_id: str) -> int:
        """The send's notification records in this stack's dispatcher database."""
        db_name = self.env["CLARION_DISPATCHER_DB_NAME"]
        return await notification_records(self.env["MONGODB_URL"], db_name, send_id)

    def _infra(self) -> InfraSettings:
        return InfraSettings(kafka_bootstrap_servers=self.env["KAFKA_BOOTSTRAP_SERVERS"])

    def __enter__(self) -> Stack:
        if self.own_topics:
            if not self.topics.prefix:
                raise ValueError("a stack with topics of its own needs CLARION_TOPIC_PREFIX")
            asyncio.run(ensure_topics(self._infra(), self.topics))
        try:
            self.start()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self.own_topics:
            asyncio.run(delete_topics(self._infra(), self.topics))
        if self.own_databases:
            asyncio.run(self._drop_databases())

    async def _drop_databases(self) -> None:
        names = [self.env[f"{prefix}DB_NAME"] for prefix in SERVICE_PREFIXES.values()]
        client = make_client(self.env["MONGODB_URL"], timeout_ms=30_000)
        try:
            for name in dict.fromkeys(names):
                await client.drop_database(name)
        finally:
            await client.close()


def main() -> None:
    """``make run``: the embedded infrastructure, the topics and the four services.

    Ctrl-C stops the services, and the embedded Kafka and FerretDB too when this run
    started them (a run that found them running leaves them running).
    """
    infra = LocalInfra()
    started_infra = not infra.is_ready()
    addresses = infra.up()
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = addresses.kafka_bootstrap_servers
    os.environ["MONGODB_URL"] = addresses.mongodb_url
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        settings = InfraSettings()
        created = asyncio.run(ensure_topics(settings, Topics(settings.topic_prefix)))
        print(f"topics ready ({len(created)} created)", flush=True)
        _serve_until_stopped(lambda: stopping)
    finally:
        if started_infra:
            print("stopping the embedded Kafka and FerretDB", flush=True)
            infra.down()
    print("Clarion stopped.", flush=True)


def _serve_until_stopped(stopping: Callable[[], bool]) -> None:
    gateway_port = int(os.environ.get("CLARION_GATEWAY_PORT", "8080"))
    os.environ.setdefault("CLARION_DASHBOARD_ADMIN_EMAIL", DEV_DASHBOARD_EMAIL)
    os.environ.setdefault("CLARION_DASHBOARD_ADMIN_PASSWORD", DEV_DASHBOARD_PASSWORD)
    with Stack(gateway_port=gateway_port) as stack:
        app_id = os.environ.get("CLARION_DEV_APP_ID", "clarion-dev")
        api_key = os.environ.get("CLARION_DEV_API_KEY", "clarion-dev-key")
        print(
            "\n"
            f"  Clarion is running.\n"
            f"  Gateway:   {stack.gateway_url}\n"
            f"  API docs:  {stack.gateway_url}/docs\n"
            f"  App id:    {app_id}\n"
            f"  API key:   {api_key}\n"
            f"  Try:       curl -H 'apikey: {api_key}' {stack.gateway_url}/v3/users\n"
            f"  Dashboard: {stack.gateway_url}/dashboard\n"
            f"             {os.environ['CLARION_DASHBOARD_ADMIN_EMAIL']} / "
            f"{os.environ['CLARION_DASHBOARD_ADMIN_PASSWORD']}\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        while not stopping():
            for name, proc in stack.processes.items():
                if proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}; stopping", flush=True)
                    return
            time.sleep(0.5)


if __name__ == "__main__":
    main()
