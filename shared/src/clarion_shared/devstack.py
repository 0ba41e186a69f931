"""Run the four services as local processes: ``make run`` and the end-to-end tests.

Starts user-directory, dispatcher, webhook-emitter and api-gateway with the current
environment (plus per-service overrides), waits until the gateway's ``/readyz`` is 200
(which means Kafka, the database and the three other services are ready), and stops
them all on exit. ``python -m clarion_shared.devstack`` prints the URLs and the dev
app's key and runs until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

from .kafka import start_new_groups_at_end
from .localinfra import LocalInfra
from .settings import InfraSettings
from .topics import REGISTRY, ensure_topics

SERVICES: tuple[tuple[str, str, str], ...] = (
    # name, module, port env var
    ("user-directory", "clarion_directory", "CLARION_DIRECTORY_PORT"),
    ("dispatcher", "clarion_dispatcher", "CLARION_DISPATCHER_PORT"),
    ("webhook-emitter", "clarion_webhooks", "CLARION_WEBHOOKS_PORT"),
    ("api-gateway", "clarion_gateway", "CLARION_GATEWAY_PORT"),
)


SERVICE_PREFIXES: dict[str, str] = {
    "api-gateway": "CLARION_GATEWAY_",
    "dispatcher": "CLARION_DISPATCHER_",
    "webhook-emitter": "CLARION_WEBHOOKS_",
    "user-directory": "CLARION_DIRECTORY_",
}


def stack_env(
    kafka_bootstrap_servers: str,
    mongodb_url: str,
    *,
    db_name: str,
    ports: Mapping[str, int],
    admin_token: str,
    log_level: str = "INFO",
    run_id: str | None = None,
) -> dict[str, str]:
    """The environment of a stack of its own: ports, database and peers' URLs.

    ``ports`` maps each service name (``api-gateway``, ...) to its port; tests and the
    benchmark use ports apart from ``make run``'s. With ``run_id``, each service's
    consumer groups are its own too (``<service>-<run_id>.<topic>``): see
    ``Stack.fresh_groups``.
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
        }
    )
    for service, prefix in SERVICE_PREFIXES.items():
        env[f"{prefix}PORT"] = str(ports[service])
        env[f"{prefix}DB_NAME"] = db_name
        # Static group membership: a process restarted by the stack (or by the crash
        # test) takes its partitions back at once. The port keeps stacks apart.
        env[f"{prefix}GROUP_INSTANCE_ID"] = f"{service}-{ports[service]}"
        if run_id is not None:
            env[f"{prefix}GROUP_ID"] = f"{service}-{run_id}"
    return env


def stack_groups(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """Every ``(consumer group, topic)`` the stack's services work in, from the registry.

    Compacted topics are left out: they hold state, which a new group reads in full.
    """
    groups: list[tuple[str, str]] = []
    for service, prefix in SERVICE_PREFIXES.items():
        group_prefix = env.get(f"{prefix}GROUP_ID", service)
        groups += [
            (f"{group_prefix}.{spec.name}", spec.name)
            for spec in REGISTRY.values()
            if service in spec.consumers and not spec.compacted
        ]
    return groups


@dataclass
class Stack:
    """The four service processes; a context manager that always stops them.

    ``fresh_groups``: before starting, give the stack's consumer groups that have no
    offsets the current end of their topics, so a throwaway stack on a shared broker
    does not work through what other stacks and tests sent before it.
    """

    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    log_dir: Path | None = None
    gateway_port: int = 8080
    fresh_groups: bool = False
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def start(self) -> None:
        """Start every service; each log file starts empty (restarts append to it)."""
        for name, module, _ in SERVICES:
            if self.log_dir is not None:
                (self.log_dir / f"{name}.log").unlink(missing_ok=True)
            self.start_one(name, module)

    def start_one(self, name: str, module: str | None = None) -> None:
        module = module or next(m for n, m, _ in SERVICES if n == name)
        out: IO[bytes] | None = None  # None: inherit the terminal
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = (self.log_dir / f"{name}.log").open("ab")
        try:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", module],
                env=self.env,
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
            self.stop_one(name)

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {proc.returncode}")
            try:
                response = httpx.get(f"{self.gateway_url}/readyz", timeout=3)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.5)
        raise TimeoutError(f"the gateway was not ready after {timeout_s}s: {last}")

    def __enter__(self) -> Stack:
        if self.fresh_groups:
            asyncio.run(
                start_new_groups_at_end(self.env["KAFKA_BOOTSTRAP_SERVERS"], stack_groups(self.env))
            )
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
        created = asyncio.run(ensure_topics(InfraSettings()))
        print(f"topics ready ({len(created)} created)", flush=True)
        _serve_until_stopped(lambda: stopping)
    finally:
        if started_infra:
            print("stopping the embedded Kafka and FerretDB", flush=True)
            infra.down()
    print("Clarion stopped.", flush=True)


def _serve_until_stopped(stopping: Callable[[], bool]) -> None:
    gateway_port = int(os.environ.get("CLARION_GATEWAY_PORT", "8080"))
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
