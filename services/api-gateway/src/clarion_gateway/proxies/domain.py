"""The rules the gateway adds to what it passes on: whose feed a feed request reads."""

from __future__ import annotations

from clarion_shared.errors import Invalid

from ..slugs import check_uid


def feed_owner(onbehalfof: str | None) -> str:
    """The uid of the ``onbehalfof`` header: required, and a valid uid."""
    if not onbehalfof:
        raise Invalid(
            "The onbehalfof header is required.",
            details=[{"field": "onbehalfof", "message": "the uid whose feed this is"}],
        )
    if not check_uid(onbehalfof):
        raise Invalid(
            "The onbehalfof header is not a valid uid.",
            details=[{"field": "onbehalfof", "message": "invalid uid"}],
        )
    return onbehalfof
