"""Where the tests' Kafka broker and MongoDB-wire server come from.

1. ``KAFKA_BOOTSTRAP_SERVERS`` / ``MONGODB_URL`` set: those are used, nothing starts.
2. A Docker engine answers: testcontainers starts Kafka and MongoDB.
3. Otherwise: ``deploy/local/infra.sh up`` starts the embedded Kafka (KRaft) and
   FerretDB on PostgreSQL as local processes (idempotent; left running for reuse,
   ``make infra-down`` stops them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class InfraAddresses:
    kafka_bootstrap_servers: str
    mongodb_url: str
    source: str  # env | testcontainers | local


def repo_root() -> Path:
    env = os.environ.get("CLARION_REPO_ROOT")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "Makefile").exists() and (parent / "deploy").is_dir():
            return parent
    raise RuntimeError("cannot find the Clarion repository root; set CLARION_REPO_ROOT")


def _docker_available() -> bool:
    if os.environ.get("CLARION_USE_TESTCONTAINERS", "auto") == "never":
        return False
    if not shutil.which("docker"):
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _start_testcontainers(stack: ExitStack) -> InfraAddresses:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.mongodb import MongoDbContainer

    kafka: Any = stack.enter_context(KafkaContainer("apache/kafka:4.1.1").with_kraft())
    mongo: Any = stack.enter_context(MongoDbContainer("mongo:7"))
    return InfraAddresses(
        kafka.get_bootstrap_server(), mongo.get_connection_url(), "testcontainers"
    )


def _start_local() -> InfraAddresses:
    script = repo_root() / "deploy" / "local" / "infra.sh"
    subprocess.run(["bash", str(script), "up"], check=True)
    out = subprocess.run(
        ["bash", str(script), "env"], check=True, capture_output=True, text=True
    ).stdout
    values: dict[str, str] = {}
    for line in out.splitlines():
        line = line.removeprefix("export ").strip()
        if "=" in line:
            name, value = line.split("=", 1)
            values[name] = value.strip("'\"")
    return InfraAddresses(values["KAFKA_BOOTSTRAP_SERVERS"], values["MONGODB_URL"], "local")


def provide_infra(stack: ExitStack) -> InfraAddresses:
    """Find or start the broker and the database; export their addresses."""
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    mongo = os.environ.get("MONGODB_URL")
    if kafka and mongo:
        addresses = InfraAddresses(kafka, mongo, "env")
    elif _docker_available() and not (kafka or mongo):
        addresses = _start_testcontainers(stack)
    else:
        addresses = _start_local()
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = addresses.kafka_bootstrap_servers
    os.environ["MONGODB_URL"] = addresses.mongodb_url
    return addresses
