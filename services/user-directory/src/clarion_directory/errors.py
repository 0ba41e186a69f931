"""The user-directory's one error mapping: its domain errors as the public API's codes.

The gateway passes these answers through as they are, so the codes, statuses and
messages are the public API's.
"""

from __future__ import annotations

from clarion_shared.errors import ErrorMapper, answer

from .users.domain import UidAlreadyExists, UserNotFound

ERRORS = ErrorMapper(
    {
        UserNotFound: answer(404, "ERR_USER_NOT_FOUND"),
        UidAlreadyExists: answer(409, "ERR_UID_ALREADY_EXISTS"),
    }
)
