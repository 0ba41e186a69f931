"""The rules the gateway adds to what it passes on: whose feed a feed request reads."""

from __future__ import annotations

from clarion_shared.errors import Invalid

from ..slugs import check_uid


def feed_owner(onbehalfof: str | None, receiver: str | None = None) -> str:
    """The uid whose feed a request reads: the ``onbehalfof`` header's, required and a
    valid uid. A list may name it with ``receiver`` instead (CometChat's admin call);
    ``receiver`` is ignored when ``onbehalfof`` is given, as CometChat's spec says."""
    if not onbehalfof and receiver is not None:
        if not check_uid(receiver):
            raise Invalid(
                "The receiver is not a valid uid.",
                details=[{"field": "receiver", "message": "invalid uid"}],
            )
        return receiver
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
