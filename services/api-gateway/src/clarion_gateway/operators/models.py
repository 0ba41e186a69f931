"""HTTP models of the operator routes (``/admin/operators``)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from clarion_shared.api import ApiModel

from .domain import Operator, Role


class OperatorCreate(ApiModel):
    """A dashboard operator. ``roles`` maps app ids to ``owner``, ``editor`` or ``viewer``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "ana@example.com",
                    "password": "a long passphrase",
                    "roles": {"clarion-dev": "editor"},
                }
            ]
        }
    )

    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=12, max_length=1024, description="Stored as an argon2id hash.")
    roles: dict[str, Role] = Field(default_factory=dict)
    superuser: bool = Field(default=False, description="Owns every app, present and future.")


class OperatorRoles(ApiModel):
    roles: dict[str, Role] = Field(description="Replaces every role: an app left out is left.")


class OperatorPublic(ApiModel):
    email: str
    superuser: bool
    roles: dict[str, Role]
    created_at: int

    @classmethod
    def of(cls, operator: Operator) -> OperatorPublic:
        return cls(
            email=operator.email,
            superuser=operator.superuser,
            roles=dict(operator.roles),
            created_at=operator.created_at,
        )
