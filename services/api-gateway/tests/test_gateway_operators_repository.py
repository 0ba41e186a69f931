"""One suite for the operators, sessions, sign-in counts and audit log, run against
the in-memory fakes and against Mongo (FerretDB): they behave alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from clarion_devtools.helpers import random_ref
from clarion_gateway.audit.domain import AuditEntry
from clarion_gateway.audit.mongo import MongoAuditLog
from clarion_gateway.audit.service import AuditLog
from clarion_gateway.operators.domain import Operator, Session
from clarion_gateway.operators.mongo import MongoLoginAttempts, MongoOperators, MongoSessions
from clarion_gateway.operators.service import LoginAttempts, OperatorRepository, SessionRepository
from clarion_gateway.testing import (
    MemoryAuditLog,
    MemoryLoginAttempts,
    MemoryOperators,
    MemorySessions,
)

MongoTarget = tuple[AsyncMongoClient[dict[str, Any]], str] | None
NOW = 1_800_000_000


@dataclass
class Repositories:
    operators: OperatorRepository
    sessions: SessionRepository
    attempts: LoginAttempts
    audit: AuditLog


@pytest.fixture(params=["memory", pytest.param("mongo", marks=pytest.mark.integration)])
def target(request: pytest.FixtureRequest) -> MongoTarget:
    # Resolved in a plain (sync) fixture: the infra fixture cannot start from inside
    # the running event loop of an async one.
    if request.param == "memory":
        return None
    return request.getfixturevalue("mongo_client"), request.getfixturevalue("test_db_name")


@pytest_asyncio.fixture
async def repos(target: MongoTarget) -> AsyncIterator[Repositories]:
    if target is None:
        yield Repositories(
            MemoryOperators(), MemorySessions(), MemoryLoginAttempts(), MemoryAuditLog()
        )
        return
    client, db_name = target
    db = client[db_name]
    found = Repositories(
        MongoOperators(db), MongoSessions(db), MongoLoginAttempts(db), MongoAuditLog(db)
    )
    for repository in (found.operators, found.sessions, found.attempts, found.audit):
        await repository.start()
    yield found
    await client.drop_database(db_name)


def _operator(email: str, superuser: bool = False) -> Operator:
    return Operator(email, "$argon2id$v=19$m=65536,t=3,p=4$x$y", superuser, {"app1": "viewer"}, NOW)


async def test_operators_are_unique_by_email_and_keep_their_roles(repos: Repositories) -> None:
    email = f"{random_ref('op')}@example.com"
    assert await repos.operators.insert(_operator(email))
    assert not await repos.operators.insert(_operator(email, superuser=True))
    assert await repos.operators.get(email) == _operator(email)
    assert await repos.operators.set_roles(email, {"app1": "owner", "app2": "editor"})
    assert not await repos.operators.set_roles("nobody@example.com", {})
    await repos.operators.set_password_hash(email, "$argon2id$new")
    stored = await repos.operators.get(email)
    assert stored is not None
    assert stored.roles == {"app1": "owner", "app2": "editor"}
    assert stored.password_hash == "$argon2id$new"
    assert [o.email for o in await repos.operators.list_all()] == [email]


async def test_the_superuser_is_ensured_without_touching_its_password(
    repos: Repositories,
) -> None:
    email = f"{random_ref('op')}@example.com"
    assert await repos.operators.insert(_operator(email))
    fresh = Operator(email, "$argon2id$other", True, {}, NOW + 5)
    assert not await repos.operators.ensure_superuser(fresh)
    stored = await repos.operators.get(email)
    assert stored is not None
    assert stored.superuser
    assert stored.password_hash == _operator(email).password_hash
    other = f"{random_ref('op')}@example.com"
    assert await repos.operators.ensure_superuser(Operator(other, "$argon2id$h", True, {}, NOW))
    assert await repos.operators.get(other) == Operator(other, "$argon2id$h", True, {}, NOW)


async def test_sessions_are_kept_touched_and_deleted(repos: Repositories) -> None:
    session = Session(random_ref("tok"), "ann@example.com", "csrf", NOW, NOW)
    await repos.sessions.insert(session, NOW + 3600)
    assert await repos.sessions.get(session.token_hash) == session
    await repos.sessions.touch(session.token_hash, NOW + 60)
    await repos.sessions.touch(session.token_hash, NOW + 30)  # never backwards
    touched = await repos.sessions.get(session.token_hash)
    assert touched is not None
    assert touched.last_seen_at == NOW + 60
    await repos.sessions.delete(session.token_hash)
    assert await repos.sessions.get(session.token_hash) is None


async def test_failed_sign_ins_are_counted_per_key_and_window(repos: Repositories) -> None:
    pair, ip = random_ref("pair"), random_ref("ip")
    assert await repos.attempts.failures([pair, ip], NOW) == [0, 0]
    for _ in range(3):
        await repos.attempts.record_failure([pair, ip], NOW, NOW + 900)
    await repos.attempts.record_failure([ip], NOW + 900, NOW + 1800)
    assert await repos.attempts.failures([pair, ip], NOW) == [3, 3]
    assert await repos.attempts.failures([pair, ip], NOW + 900) == [0, 1]
    await repos.attempts.clear(pair, NOW)
    assert await repos.attempts.failures([pair, ip], NOW) == [0, 3]


async def test_the_audit_log_lists_an_apps_entries_newest_first(repos: Repositories) -> None:
    app = random_ref("app")
    entries = [
        AuditEntry(f"aud_{i}", app, "ann@example.com", "send", f"ntf_{i}", NOW + i, {"i": i})
        for i in range(3)
    ]
    for entry in entries:
        await repos.audit.append(entry)
    await repos.audit.append(
        AuditEntry("aud_x", random_ref("app"), "bo@example.com", "send", None, NOW)
    )
    listed, total = await repos.audit.list_for_app(app, 0, 2)
    assert total == 3
    assert listed == [entries[2], entries[1]]
    rest, _ = await repos.audit.list_for_app(app, 2, 2)
    assert rest == [entries[0]]
