"""Operators and their sessions: the use cases and the repositories they need.

Signing in is rate limited by failures counted in the database (every gateway process
sees the same counts), per email and address and per address, in fixed windows; the
answer takes as long for an unknown email as for a wrong password.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from clarion_shared.errors import Invalid
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger

from ..apps.service import AppLookup
from . import passwords
from .domain import (
    LoginLimits,
    Operator,
    OperatorExists,
    OperatorNotFound,
    Role,
    Session,
    SessionPolicy,
    SignedIn,
    Throttled,
    check_email,
    check_password,
    check_roles,
    hash_token,
    new_token,
    normalize_email,
)

log = get_logger(__name__)


class OperatorRepository(Resource, Protocol):
    async def insert(self, operator: Operator) -> bool:
        """False when the email is taken."""
        ...

    async def get(self, email: str) -> Operator | None: ...

    async def list_all(self) -> list[Operator]: ...

    async def set_roles(self, email: str, roles: Mapping[str, Role]) -> bool:
        """False when there is no such operator."""
        ...

    async def set_password_hash(self, email: str, password_hash: str) -> None: ...

    async def ensure_superuser(self, operator: Operator) -> bool:
        """Create the operator, or make the existing one a superuser (its password left
        as it is); True when created."""
        ...


class SessionRepository(Resource, Protocol):
    async def insert(self, session: Session, expires_at: int) -> None: ...

    async def get(self, token_hash: str) -> Session | None: ...

    async def touch(self, token_hash: str, now: int) -> None: ...

    async def delete(self, token_hash: str) -> None: ...


class LoginAttempts(Resource, Protocol):
    """Failed sign-ins per key (a hash of what is counted) and window."""

    async def failures(self, keys: Sequence[str], window_start: int) -> list[int]:
        """The count of each key in the window (0 when none), in order."""
        ...

    async def record_failure(self, keys: Sequence[str], window_start: int, expires_at: int) -> None:
        """One more failure for each key in the window."""
        ...

    async def clear(self, key: str, window_start: int) -> None: ...


@dataclass(frozen=True)
class Accounts:
    """What signing in and sessions need."""

    operators: OperatorRepository
    sessions: SessionRepository
    attempts: LoginAttempts
    policy: SessionPolicy = field(default_factory=SessionPolicy)
    limits: LoginLimits = field(default_factory=LoginLimits)


def _key(*parts: str) -> str:
    # Hashed: what attackers type as emails is not kept.
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


async def sign_in(
    accounts: Accounts, email: str, password: str, ip: str, now: int
) -> SignedIn | Throttled | None:
    """A new session for the operator; ``Throttled`` when too many sign-ins failed
    from this address (for this email, or at all) in the window; None when the email
    or the password is wrong (which one is not said)."""
    limits = accounts.limits
    normalized = normalize_email(email)
    keys = [_key("email+ip", normalized, ip), _key("ip", ip)]
    window = now - now % limits.window_s
    pair, per_ip = await accounts.attempts.failures(keys, window)
    if pair >= limits.per_email_and_ip or per_ip >= limits.per_ip:
        log.warning("operator.sign_in_throttled", ip=ip)
        return Throttled(retry_after_s=max(1, window + limits.window_s - now))
    operator = await accounts.operators.get(normalized)
    matches = await passwords.verify_password(
        operator.password_hash if operator else None, password
    )
    if operator is None or not matches:
        await accounts.attempts.record_failure(keys, window, window + limits.window_s)
        log.info("operator.sign_in_failed", ip=ip)
        return None
    if passwords.needs_rehash(operator.password_hash):
        rehashed = await passwords.hash_password(password)
        await accounts.operators.set_password_hash(operator.email, rehashed)
        operator = replace(operator, password_hash=rehashed)
    await accounts.attempts.clear(keys[0], window)
    token = new_token()
    session = Session(
        token_hash=hash_token(token),
        email=operator.email,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
    )
    await accounts.sessions.insert(session, accounts.policy.expires_at(session))
    log.info("operator.signed_in", email=operator.email)
    return SignedIn(operator, session, token)


async def current_session(
    accounts: Accounts, token: str | None, now: int
) -> tuple[Operator, Session] | None:
    """The operator and session of a cookie's token; None when signed out, expired
    (idle or too old: then forgotten) or the operator is gone. Roles are read on every
    request, so a change applies at once."""
    if not token:
        return None
    token_hash = hash_token(token)
    session = await accounts.sessions.get(token_hash)
    if session is None:
        return None
    operator = await accounts.operators.get(session.email)
    if operator is None or accounts.policy.expired(session, now):
        await accounts.sessions.delete(token_hash)
        return None
    if now - session.last_seen_at >= accounts.policy.touch_every_s:
        await accounts.sessions.touch(token_hash, now)
        session = replace(session, last_seen_at=now)
    return operator, session


async def sign_out(accounts: Accounts, token: str | None) -> None:
    if token:
        await accounts.sessions.delete(hash_token(token))


async def _check_apps(apps: AppLookup, roles: Mapping[str, str]) -> dict[str, Role]:
    checked = check_roles(roles)
    unknown = [app_id for app_id in checked if await apps.get(app_id) is None]
    if unknown:
        raise Invalid(
            "roles name apps that do not exist.",
            details=[{"field": f"roles.{app_id}", "message": "no such app"} for app_id in unknown],
        )
    return checked


async def create_operator(
    operators: OperatorRepository,
    apps: AppLookup,
    email: str,
    password: str,
    roles: Mapping[str, str],
    now: int,
    superuser: bool = False,
) -> Operator:
    normalized = check_email(email)
    checked = await _check_apps(apps, roles)
    operator = Operator(
        email=normalized,
        password_hash=await passwords.hash_password(check_password(password)),
        superuser=superuser,
        roles=checked,
        created_at=now,
    )
    if not await operators.insert(operator):
        raise OperatorExists(normalized)
    log.info("operator.created", email=normalized, superuser=superuser, apps=len(checked))
    return operator


async def set_roles(
    operators: OperatorRepository, apps: AppLookup, email: str, roles: Mapping[str, str]
) -> Operator:
    """Replace the operator's roles (an app left out loses its role)."""
    normalized = normalize_email(email)
    checked = await _check_apps(apps, roles)
    if not await operators.set_roles(normalized, checked):
        raise OperatorNotFound(normalized)
    operator = await operators.get(normalized)
    if operator is None:
        raise OperatorNotFound(normalized)
    log.info("operator.roles_set", email=normalized, apps=len(checked))
    return operator


async def list_operators(operators: OperatorRepository) -> list[Operator]:
    return sorted(await operators.list_all(), key=lambda o: o.email)


async def ensure_first_operator(
    operators: OperatorRepository, email: str, password: str, now: int
) -> None:
    """The superuser of ``make run`` (or of the deployment's settings): created with
    this password when missing; an existing one keeps its password."""
    normalized = check_email(email)
    existing = await operators.get(normalized)
    password_hash = existing.password_hash if existing else await passwords.hash_password(password)
    operator = Operator(normalized, password_hash, True, {}, now)
    created = await operators.ensure_superuser(operator)
    log.info("operator.first_operator_ready", email=normalized, created=created)


async def apps_of(operator: Operator, apps: AppLookup) -> list[tuple[str, str, Role]]:
    """The apps the operator may open: (app id, name, role), by name."""
    listed: list[tuple[str, str, Role]]
    if operator.superuser:
        listed = [(app.app_id, app.name, "owner") for app in await apps.list_all()]
    else:
        listed = []
        for app_id, role in operator.roles.items():
            app = await apps.get(app_id)
            if app is not None:
                listed.append((app.app_id, app.name, role))
    return sorted(listed, key=lambda item: (item[1].casefold(), item[0]))
