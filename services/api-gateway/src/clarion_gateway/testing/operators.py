"""In-memory operators, sessions, sign-in counts and audit log, with the behaviour of
their Mongo adapters (``tests/test_gateway_operators_repository.py`` runs one suite on
both)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from ..audit.domain import AuditEntry
from ..operators.domain import Operator, Role, Session


class _NoLifecycle:
    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class MemoryOperators(_NoLifecycle):
    def __init__(self) -> None:
        self.items: dict[str, Operator] = {}

    async def insert(self, operator: Operator) -> bool:
        if operator.email in self.items:
            return False
        self.items[operator.email] = operator
        return True

    async def get(self, email: str) -> Operator | None:
        return self.items.get(email)

    async def list_all(self) -> list[Operator]:
        return list(self.items.values())

    async def set_roles(self, email: str, roles: Mapping[str, Role]) -> bool:
        operator = self.items.get(email)
        if operator is None:
            return False
        self.items[email] = replace(operator, roles=dict(roles))
        return True

    async def set_password_hash(self, email: str, password_hash: str) -> None:
        operator = self.items.get(email)
        if operator is not None:
            self.items[email] = replace(operator, password_hash=password_hash)

    async def ensure_superuser(self, operator: Operator) -> bool:
        existing = self.items.get(operator.email)
        self.items[operator.email] = replace(existing or operator, superuser=True)
        return existing is None


class MemorySessions(_NoLifecycle):
    def __init__(self) -> None:
        self.items: dict[str, Session] = {}
        self.expires_at: dict[str, int] = {}

    async def insert(self, session: Session, expires_at: int) -> None:
        self.items[session.token_hash] = session
        self.expires_at[session.token_hash] = expires_at

    async def get(self, token_hash: str) -> Session | None:
        return self.items.get(token_hash)

    async def touch(self, token_hash: str, now: int) -> None:
        session = self.items.get(token_hash)
        if session is not None:
            self.items[token_hash] = replace(session, last_seen_at=max(now, session.last_seen_at))

    async def delete(self, token_hash: str) -> None:
        self.items.pop(token_hash, None)
        self.expires_at.pop(token_hash, None)


class MemoryLoginAttempts(_NoLifecycle):
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    async def failures(self, keys: Sequence[str], window_start: int) -> list[int]:
        return [self.counts.get(f"{key}:{window_start}", 0) for key in keys]

    async def record_failure(self, keys: Sequence[str], window_start: int, expires_at: int) -> None:
        for key in keys:
            doc_id = f"{key}:{window_start}"
            self.counts[doc_id] = self.counts.get(doc_id, 0) + 1

    async def clear(self, key: str, window_start: int) -> None:
        self.counts.pop(f"{key}:{window_start}", None)


class MemoryAuditLog(_NoLifecycle):
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    async def append(self, entry: AuditEntry) -> None:
        self.entries.append(entry)

    async def list_for_app(
        self, app_id: str, offset: int, limit: int
    ) -> tuple[list[AuditEntry], int]:
        mine = [e for e in self.entries if e.app_id == app_id]
        mine.sort(key=lambda e: (e.at, e.entry_id), reverse=True)
        return mine[offset : offset + limit], len(mine)
