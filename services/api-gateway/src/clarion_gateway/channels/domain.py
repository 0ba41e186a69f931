"""Channels: types and their limits, credential masking. Pure rules, no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import JsonValue

from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.sends import CHANNEL_TYPES, ChannelType
from clarion_shared.errors import Conflict, Invalid, NotFound, Unavailable

# Per app, at most this many channels of a type (None: no limit).
CHANNEL_TYPE_LIMITS: Mapping[str, int] = {"push": 1}


@dataclass(frozen=True)
class Channel:
    app_id: str
    channel_id: str
    name: str
    type: ChannelType
    enabled: bool
    metadata: JsonObject
    created_at: int
    updated_at: int


@dataclass(frozen=True)
class NewChannel:
    """A channel as a client asks for it; ``channel_id`` is generated when None."""

    name: str
    type: str
    channel_id: str | None = None
    enabled: bool = False
    metadata: JsonObject | None = None


@dataclass(frozen=True)
class ChannelChanges:
    """What an update changes (None: kept). ``metadata`` replaces the stored one."""

    name: str | None = None
    enabled: bool | None = None
    metadata: JsonObject | None = None


class ChannelNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Channel")


class ChannelIdTaken(Conflict):
    def __init__(self, channel_id: str) -> None:
        super().__init__(
            f"A channel with channelId {channel_id!r} already exists.",
            details={"channelId": channel_id},
        )


class ChannelConfigNotPropagated(Unavailable):
    """Saved, but the dispatcher was not told: the client's retry publishes again."""

    def __init__(self, channel_id: str) -> None:
        super().__init__(
            "The channel was saved but its configuration could not be propagated; "
            "send the update again.",
            details={"channelId": channel_id},
        )


def known_channel_type(value: str) -> ChannelType | None:
    for channel_type in CHANNEL_TYPES:
        if value == channel_type:
            return channel_type
    return None


def channel_type_of(value: str) -> ChannelType:
    """A channel type a client named; invalid when unknown (Clarion delivers every type
    CometChat lists, so none is refused as restricted)."""
    channel_type = known_channel_type(value)
    if channel_type is not None:
        return channel_type
    raise Invalid(
        f"Unknown channel type {value!r}.",
        details=[{"field": "type", "message": f"one of {', '.join(CHANNEL_TYPES)}"}],
    )


_SENSITIVE_MARKERS = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "accesskey",
    "serverkey",
    "signingkey",
    "credential",
    "authorization",
    "serviceaccount",  # a push channel's Google service-account key file, whole
)
_SENSITIVE_EXACT = frozenset({"auth", "pass", "pwd", "key"})
MASK = "****"


def is_sensitive(key: str) -> bool:
    """Whether a metadata key holds a credential (``password``, ``authToken``, ...)."""
    norm = re.sub(r"[^a-z]", "", key.lower())
    return norm in _SENSITIVE_EXACT or any(marker in norm for marker in _SENSITIVE_MARKERS)


def mask_value(value: str) -> str:
    """``****abcd``: the last four characters, only for values long enough that four
    characters give nothing away."""
    return f"{MASK}{value[-4:]}" if len(value) >= 12 else MASK


def _mask_all(value: JsonValue) -> JsonValue:
    if isinstance(value, str):
        return mask_value(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return MASK
    if isinstance(value, dict):
        return {k: _mask_all(v) for k, v in value.items()}
    return [_mask_all(v) for v in value]


def mask_metadata(metadata: JsonObject) -> JsonObject:
    """A copy of channel metadata safe to return: credentials masked at any depth."""
    out: JsonObject = {}
    for key, value in metadata.items():
        if is_sensitive(key):
            out[key] = _mask_all(value)
        elif isinstance(value, dict):
            out[key] = mask_metadata(value)
        elif isinstance(value, list):
            out[key] = [mask_metadata(v) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    return out


def keep_masked_secrets(new: JsonObject, old: JsonObject, secret: bool = False) -> JsonObject:
    """Metadata for an update: a credential sent back masked keeps its stored value.

    Clients read a channel (masked), change one field and send it all back; that must
    not overwrite the real password with ``****``. Below a credential's key (``secret``:
    a service account, masked whole) every masked value keeps its stored one.
    """
    out: JsonObject = {}
    for key, value in new.items():
        previous = old.get(key)
        masked = secret or is_sensitive(key)
        if masked and isinstance(value, str) and value.startswith(MASK) and previous is not None:
            out[key] = previous
        elif isinstance(value, dict) and isinstance(previous, dict):
            out[key] = keep_masked_secrets(value, previous, masked)
        else:
            out[key] = value
    return out
