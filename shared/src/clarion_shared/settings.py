"""Settings shared by every service: one validated object per service.

Each service subclasses :class:`ServiceSettings` with its own ``env_prefix``
(``CLARION_GATEWAY_``, ``CLARION_DISPATCHER_``, ...). The infrastructure addresses are
the same for every process, so they are read from un-prefixed names
(``KAFKA_BOOTSTRAP_SERVERS``, ``MONGODB_URL``) and may be overridden per service; so
is the secret the services' internal HTTP APIs share (``CLARION_INTERNAL_TOKEN``).
"""

from __future__ import annotations

from typing import Self

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_ADMIN_TOKEN = "clarion-dev-admin-token"
# Public, like the dev admin token: refused when CLARION_ENV=production.
DEV_INTERNAL_TOKEN = "clarion-dev-internal-token"


def _shared(name: str, prefix: str = "") -> AliasChoices:
    return AliasChoices(f"{prefix}{name}", name) if prefix else AliasChoices(name)


class InfraSettings(BaseSettings):
    """Where Kafka and MongoDB are, and how topics are laid out."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:19092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"),
    )
    mongodb_url: str = Field(
        default="mongodb://127.0.0.1:27018/",
        validation_alias=AliasChoices("MONGODB_URL", "mongodb_url"),
    )
    kafka_partitions: int = Field(
        default=4,
        ge=1,
        validation_alias=AliasChoices("CLARION_KAFKA_PARTITIONS", "kafka_partitions"),
    )
    kafka_replication_factor: int = Field(
        default=1,
        ge=1,
        validation_alias=AliasChoices(
            "CLARION_KAFKA_REPLICATION_FACTOR", "kafka_replication_factor"
        ),
    )
    topic_prefix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]{0,100}$",
        validation_alias=AliasChoices("CLARION_TOPIC_PREFIX", "topic_prefix"),
        description="Namespace of every topic name (<prefix>clarion.sends, ...), so that "
        "several stacks can share one Kafka cluster (clarion_shared.topics.Topics).",
    )
    mongo_timeout_ms: int = Field(
        default=10_000,
        ge=100,
        validation_alias=AliasChoices("CLARION_MONGO_TIMEOUT_MS", "mongo_timeout_ms"),
        description="Deadline of every database operation, waiting for a connection "
        "included (PyMongo's timeoutMS): no call waits on the database for ever.",
    )
    mongo_max_pool_size: int = Field(
        default=25,
        ge=1,
        validation_alias=AliasChoices("CLARION_MONGO_MAX_POOL_SIZE", "mongo_max_pool_size"),
        description="Database connections per process. On the embedded FerretDB, all "
        "processes together must stay under its PostgreSQL pool (see deploy/local).",
    )
    kafka_request_timeout_ms: int = Field(
        default=15_000,
        ge=1_000,
        validation_alias=AliasChoices(
            "CLARION_KAFKA_REQUEST_TIMEOUT_MS", "kafka_request_timeout_ms"
        ),
        description="Deadline of every broker request; a publish not acknowledged in "
        "time fails (and its consumer's record is retried) instead of waiting.",
    )
    kafka_linger_ms: int = Field(
        default=0,
        ge=0,
        le=1_000,
        validation_alias=AliasChoices("CLARION_KAFKA_LINGER_MS", "kafka_linger_ms"),
        description="How long a producer waits to fill a batch before sending it. 0: a "
        "record goes at once (records still batch while a request is in flight), which "
        "keeps each Kafka hop of a realtime send short.",
    )
    environment: str = Field(
        default="dev",
        validation_alias=AliasChoices("CLARION_ENV", "environment"),
        description="dev or production; production refuses unsafe defaults.",
    )
    log_level: str = Field(
        default="INFO", validation_alias=AliasChoices("CLARION_LOG_LEVEL", "log_level")
    )
    log_json: bool | None = Field(
        default=None,
        validation_alias=AliasChoices("CLARION_LOG_JSON", "log_json"),
        description="JSON logs; by default JSON unless stderr is a terminal.",
    )


class InternalAuthSettings(InfraSettings):
    """The credential of the services' internal HTTP APIs (``/internal/...``).

    Every service reads it under the one name ``CLARION_INTERNAL_TOKEN``, whatever its
    prefix: the gateway sends it, the owners check it (``clarion_shared.http``).
    """

    internal_token: str = Field(
        default=DEV_INTERNAL_TOKEN,
        min_length=1,
        validation_alias=AliasChoices("CLARION_INTERNAL_TOKEN", "internal_token"),
        description="Shared secret of the /internal routes of every service (header "
        "X-Clarion-Internal-Token); the default is refused in production.",
    )

    @model_validator(mode="after")
    def _refuse_dev_internal_token(self) -> Self:
        if self.environment == "production" and self.internal_token == DEV_INTERNAL_TOKEN:
            raise ValueError(
                "CLARION_INTERNAL_TOKEN must be set in production (the default is public)"
            )
        return self


class ServiceSettings(InternalAuthSettings):
    """Base of each service's settings: database name, HTTP bind address.

    Each service keeps its collections in a database of its own (``db_name``, default
    ``clarion_<service>``), so two services' collections never collide.
    """

    db_name: str
    host: str = "127.0.0.1"
    port: int = 8080
    instance_id: str = Field(
        default="",
        description="Unique per process; derived from host and pid when empty.",
    )

    group_instance_id: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9_-]{0,100}$",
        description="Stable name of this process for Kafka static membership, such as a "
        "StatefulSet pod name: a process restarted under the same name takes its "
        "partitions back at once. Empty: dynamic membership (a crashed process's "
        "partitions wait for its 10-s session to expire). Unique per process.",
    )

    @model_validator(mode="after")
    def _fill_instance_id(self) -> Self:
        if not self.instance_id:
            import os
            import socket

            object.__setattr__(self, "instance_id", f"{socket.gethostname()}-{os.getpid()}")
        return self
