"""The roles an app's users have: what the dashboard's "Role" filter offers.

Roles are free text on each user (CometChat's ``role``), so an app's roles are the
distinct values its users carry, read from the users themselves: a role appears with
its first user and goes with its last. At most ``MAX_ROLES`` are listed, in order.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict

MAX_ROLES = 500


class RoleIndex(Protocol):
    async def roles(self, app_id: str, limit: int) -> list[str]:
        """The distinct roles of the app's users, sorted, at most ``limit``."""
        ...


class RolesListed(BaseModel):
    model_config = ConfigDict(frozen=True)

    roles: list[str]
    truncated: bool  # more roles exist than were listed


async def list_roles(index: RoleIndex, app_id: str) -> RolesListed:
    found = await index.roles(app_id, MAX_ROLES + 1)
    return RolesListed(roles=found[:MAX_ROLES], truncated=len(found) > MAX_ROLES)
