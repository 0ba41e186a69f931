"""Base of every Kafka message contract.

Contracts are frozen pydantic models. Within a version changes are additive only:
consumers ignore fields they do not know, producers never remove or retype one. A
breaking change is a new model with ``v`` bumped, handled side by side.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, JsonValue

JsonObject = dict[str, JsonValue]


class Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class ErrorInfo(Contract):
    """A failure reported per recipient: an API error code and a safe message."""

    code: str
    message: str
