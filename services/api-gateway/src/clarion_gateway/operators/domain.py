"""Operators, their roles per app, sessions and sign-in limits: pure rules, no I/O.

An operator signs in to the dashboard with an email and a password. The superuser (the
first operator, from the environment) owns every app; any other operator sees only the
apps it has a role in. Roles are ordered: a ``viewer`` reads, an ``editor`` also sends,
runs campaigns and approves templates, an ``owner`` also changes webhooks (where the
app's events go, and their signing secrets), reads the audit log and manages the app's
operators.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from clarion_shared.errors import Conflict, Invalid, NotFound

Role = Literal["owner", "editor", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)
_RANK: dict[Role, int] = {"viewer": 0, "editor": 1, "owner": 2}

# Not RFC 5322: one @, no spaces, a dot in the domain; what people type.
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
# The first operator of ``make run`` (documented; the password is refused in production).
DEV_ADMIN_EMAIL = "admin@clarion.local"
DEV_ADMIN_PASSWORD = "clarion-dev-password"
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # argon2 hashes any length; a bound keeps a request cheap


@dataclass(frozen=True)
class Operator:
    email: str  # normalised: lower case, the operator's id
    password_hash: str
    superuser: bool
    roles: Mapping[str, Role]  # app id -> role
    created_at: int

    def role_in(self, app_id: str) -> Role | None:
        """The operator's role in the app; the superuser owns every app."""
        return "owner" if self.superuser else self.roles.get(app_id)


@dataclass(frozen=True)
class Session:
    """A signed-in browser. Only the token's SHA-256 is stored: a database dump lets
    nobody in."""

    token_hash: str
    email: str
    csrf_token: str
    created_at: int
    last_seen_at: int


@dataclass(frozen=True)
class SessionPolicy:
    idle_s: int = 2 * 3600
    lifetime_s: int = 12 * 3600
    # A session's last_seen_at is written at most this often: not one write per page.
    touch_every_s: int = 60

    def expired(self, session: Session, now: int) -> bool:
        return (
            now >= session.last_seen_at + self.idle_s or now >= session.created_at + self.lifetime_s
        )

    def expires_at(self, session: Session) -> int:
        """When the session ends at the latest (the store may forget it then)."""
        return session.created_at + self.lifetime_s


@dataclass(frozen=True)
class LoginLimits:
    """Failed sign-ins counted per window: per email and address, and per address
    alone (one address trying many emails)."""

    window_s: int = 15 * 60
    per_email_and_ip: int = 5
    per_ip: int = 50


@dataclass(frozen=True)
class Throttled:
    retry_after_s: int


@dataclass(frozen=True)
class SignedIn:
    operator: Operator
    session: Session
    token: str = field(repr=False)  # the cookie's value, never stored


def can_send(role: Role | None) -> bool:
    """Sends, campaigns and template approvals: editors and owners."""
    return role is not None and _RANK[role] >= _RANK["editor"]


def can_manage(role: Role | None) -> bool:
    """Webhooks, the app's operators and its audit log: owners."""
    return role == "owner"


def normalize_email(email: str) -> str:
    """Emails are unique whatever their case: the stored form is lower case."""
    return email.strip().lower()


def check_email(email: str) -> str:
    normalized = normalize_email(email)
    if not _EMAIL_RE.match(normalized) or len(normalized) > 254:
        raise Invalid(
            "email is not a valid email address.",
            details=[{"field": "email", "message": "invalid email"}],
        )
    return normalized


def check_password(password: str) -> str:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise Invalid(
            f"password must be {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters.",
            details=[{"field": "password", "message": "too short or too long"}],
        )
    return password


def check_roles(roles: Mapping[str, str]) -> dict[str, Role]:
    bad = [app_id for app_id, role in roles.items() if role not in ROLES]
    if bad:
        raise Invalid(
            "roles must map app ids to owner, editor or viewer.",
            details=[{"field": f"roles.{app_id}", "message": "unknown role"} for app_id in bad],
        )
    return {app_id: role for app_id, role in roles.items() if role in ROLES}


def new_token() -> str:
    """A session token: 32 random bytes."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """A fast hash is right: the token is 256 random bits, not a password."""
    return hashlib.sha256(token.encode()).hexdigest()


class OperatorExists(Conflict):
    def __init__(self, email: str) -> None:
        super().__init__("An operator with this email exists.", details={"email": email})


class OperatorNotFound(NotFound):
    def __init__(self, email: str) -> None:
        super().__init__("No operator has this email.", details={"email": email})
