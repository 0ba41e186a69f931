"""The gateway's one error mapping: its error classes → the envelope.

On top of the common mapping (``Invalid`` 400, ``NotFound`` 404, ``Conflict`` 409, ...):
the send errors with codes of their own, the dispatcher's result codes of a realtime
send, and a peer the proxies could not reach.
"""

from __future__ import annotations

from clarion_shared.errors import ApiError, ErrorMapper, answer

from .campaigns.audience_csv import ERR_CSV_TOO_LARGE, AudienceCsvFailed
from .campaigns.domain import (
    CampaignEmpty,
    CampaignStatusRefused,
    TemplateVersionUnusable,
    TooManyRecipients,
)
from .campaigns.uploads import NothingUploaded, UploadTooLarge
from .channels.domain import ChannelConfigNotPropagated
from .proxies.peers import PeerUnavailable
from .sends.domain import ChannelUnusable, SendRejected, TooManyReceivers, UnknownTemplate
from .templates.domain import TemplateNotApproved

# Error codes a dispatcher may answer a realtime send with, and their HTTP statuses;
# any other code is the gateway's 500.
RESULT_STATUS = {
    "ERR_VALIDATION": 400,
    "ERR_BAD_REQUEST": 400,
    "ERR_TEMPLATE_NOT_FOUND": 400,
    "ERR_TEMPLATE_NOT_APPROVED": 400,
    "ERR_CHANNEL_NOT_FOUND": 400,
    "ERR_INVALID_VARIABLES": 400,
    "ERR_TARGET_LIMIT_EXCEEDED": 400,
    "ERR_USER_NOT_FOUND": 400,
    "ERR_NOT_FOUND": 404,
    "ERR_CONFLICT": 409,
    "ERR_TOO_MANY_REQUESTS": 429,
    "ERR_UNAVAILABLE": 503,
    "ERR_TIMEOUT": 504,
}


def _rejected(exc: SendRejected) -> ApiError:
    status = RESULT_STATUS.get(exc.code)
    if status is None:
        return ApiError(500, "ERR_INTERNAL", "The send failed.", exc.dev_message, exc.details)
    return ApiError(status, exc.code, exc.message, exc.dev_message, exc.details)


def _csv_failed(exc: AudienceCsvFailed) -> ApiError:
    """A CSV refused whole while its upload is answered (its header)."""
    return ApiError(413 if exc.code == ERR_CSV_TOO_LARGE else 400, exc.code, exc.message)


def _peer_unavailable(exc: PeerUnavailable) -> ApiError:
    if exc.timed_out:
        return ApiError(
            504,
            "ERR_TIMEOUT",
            "The request took too long; try again.",
            dev_message=f"The {exc.peer} service did not answer in time.",
        )
    return ApiError(
        503,
        "ERR_UNAVAILABLE",
        "The service is temporarily unavailable; try again.",
        dev_message=f"The {exc.peer} service is unreachable.",
        headers={"Retry-After": "1"},
    )


ERRORS = ErrorMapper(
    {
        UnknownTemplate: answer(400, "ERR_TEMPLATE_NOT_FOUND"),
        TemplateNotApproved: answer(400, "ERR_TEMPLATE_NOT_APPROVED"),
        ChannelUnusable: answer(400, "ERR_CHANNEL_NOT_FOUND"),
        TooManyReceivers: answer(400, "ERR_TARGET_LIMIT_EXCEEDED"),
        TooManyRecipients: answer(400, "ERR_TARGET_LIMIT_EXCEEDED"),
        CampaignStatusRefused: answer(400, "ERR_CAMPAIGN_STATUS"),
        CampaignEmpty: answer(400, "ERR_BAD_REQUEST"),
        TemplateVersionUnusable: answer(400, "ERR_TEMPLATE_NOT_FOUND"),
        SendRejected: _rejected,
        # CSV imports (campaigns.import_routes).
        AudienceCsvFailed: _csv_failed,
        NothingUploaded: answer(400, "ERR_CSV_INVALID"),
        UploadTooLarge: answer(413, "ERR_PAYLOAD_TOO_LARGE"),
        # Saved but not propagated: no Retry-After, the client sends the update again.
        ChannelConfigNotPropagated: answer(503, "ERR_UNAVAILABLE"),
        PeerUnavailable: _peer_unavailable,
    }
)
