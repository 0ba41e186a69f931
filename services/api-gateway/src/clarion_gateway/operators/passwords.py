"""Password hashes: argon2id (argon2-cffi's ``PasswordHasher`` defaults, RFC 9106's
second recommendation), computed off the event loop.

A hash costs tens of milliseconds of CPU: run on the loop it would stall every other
request of the process, so each call goes to a worker thread.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()
# Verified against when the email is unknown: a sign-in takes the same time whether or
# not the operator exists, so timing does not tell which emails are operators.
_DUMMY_HASH = _HASHER.hash("clarion: no such operator")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; with no hash (unknown email), a dummy is verified
    and the answer is False."""
    if password_hash is None:
        await asyncio.to_thread(_verify, _DUMMY_HASH, password)
        return False
    return await asyncio.to_thread(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """The hash was made with weaker parameters than today's: hash again on sign-in."""
    return _HASHER.check_needs_rehash(password_hash)
