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
from typing import Any

from .localinfra import InfraAddresses, LocalInfra, repo_root

__all__ = ["InfraAddresses", "provide_infra", "repo_root"]


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
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.mongodb import MongoDbContainer

    # testcontainers' Kafka module drives Confluent's image (Apache Kafka 3.8 in KRaft).
    kafka: Any = stack.enter_context(KafkaContainer("confluentinc/cp-kafka:7.8.0").with_kraft())
    mongo: Any = stack.enter_context(MongoDbContainer("mongo:7.0"))
    return InfraAddresses(
        kafka.get_bootstrap_server(), mongo.get_connection_url(), "testcontainers"
    )


def provide_infra(stack: ExitStack) -> InfraAddresses:
    """Find or start the broker and the database; export their addresses."""
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    mongo = os.environ.get("MONGODB_URL")
    if kafka and mongo:
        addresses = InfraAddresses(kafka, mongo, "env")
    elif _docker_available() and not (kafka or mongo):
        addresses = _start_testcontainers(stack)
    else:
        addresses = LocalInfra().up()
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = addresses.kafka_bootstrap_servers
    os.environ["MONGODB_URL"] = addresses.mongodb_url
    return addresses
