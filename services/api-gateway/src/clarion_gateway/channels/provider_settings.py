"""A channel's provider settings (API.md Channels), checked when the channel is written
with the models the delivery workers read (``clarion_shared.channel_settings``).

- An enabled channel's ``metadata`` must parse with its type's model: every key missing
  or malformed is 400 ``ERR_VALIDATION``, ``details`` naming each as
  ``metadata.<path>`` (API.md's camelCase names). Keys a model does not know are stored
  and ignored.
- A disabled channel may be saved incomplete, so an operator can fill it in over several
  writes: missing keys (and push's "fcm or apns") wait until it is enabled. What it
  carries must be well formed all the same: a port that is not a number is refused now,
  not when someone enables the channel.
- Provider URLs (``url``, ``baseUrl``, ``tokenUrl``, a service account's ``token_uri``)
  follow the webhook URL rule (``webhooks.domain.check_url``): https, and no loopback,
  private or link-local host, unless ``CLARION_WEBHOOKS_ALLOW_PRIVATE``. The delivery
  workers check the addresses again where they connect.
- ``in_app`` has no settings. A ``custom`` channel's signing secrets are Clarion's
  (:data:`SIGNING_KEYS`): generated on create, kept on every update, never a client's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import JsonValue, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from clarion_shared.channel_settings.custom import CustomSettings
from clarion_shared.channel_settings.email import EmailSettings
from clarion_shared.channel_settings.push import PushSettings
from clarion_shared.channel_settings.sms import SMS_SETTINGS
from clarion_shared.channel_settings.whatsapp import WhatsAppSettings
from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.sends import ChannelType
from clarion_shared.errors import Invalid

from ..webhooks.domain import check_url

_MODELS: Mapping[ChannelType, TypeAdapter[Any]] = {
    "email": TypeAdapter(EmailSettings),
    "push": TypeAdapter(PushSettings),
    "sms": SMS_SETTINGS,
    "whatsapp": TypeAdapter(WhatsAppSettings),
    "custom": TypeAdapter(CustomSettings),
}
SMS_PROVIDERS = ("twilio", "http")  # the tags of SMS_SETTINGS, first in its errors' loc
_TAG_ERRORS = frozenset({"union_tag_not_found", "union_tag_invalid"})
# Errors that say something is absent, not wrong: a disabled channel may have them.
_ABSENT = frozenset({"missing", "union_tag_not_found"})

# The provider URLs of each type (per sms provider), as paths in the metadata.
Path = tuple[str, ...]
_URLS: Mapping[str, tuple[Path, ...]] = {
    "push": (
        ("fcm", "baseUrl"),
        ("fcm", "tokenUrl"),
        ("fcm", "serviceAccount", "token_uri"),
        ("apns", "baseUrl"),
    ),
    "sms:twilio": (("baseUrl",),),
    "sms:http": (("url",),),
    "whatsapp": (("baseUrl",),),
    "custom": (("url",),),
}

# Kept by Clarion in a custom channel's metadata (channel_settings/custom.py), under
# API.md's names; the model also reads the snake_case twins, so those are dropped too.
SIGNING_SECRET = "signingSecret"
SIGNING_KEYS = ("signingSecret", "previousSigningSecret", "previousSecretExpiresAt")
_SIGNING_TWINS = ("signing_secret", "previous_signing_secret", "previous_secret_expires_at")

Problem = dict[str, str]


def settings_problems(
    channel_type: ChannelType, metadata: JsonObject, *, enabled: bool, allow_private: bool
) -> list[Problem]:
    """What is wrong with ``metadata`` as ``channel_type``'s settings, each problem
    ``{field: "metadata.<path>", message}``; none for ``in_app``."""
    model = _MODELS.get(channel_type)
    if model is None:
        return []
    problems: list[Problem] = []
    try:
        model.validate_python(metadata)
    except ValidationError as exc:
        problems = [
            _problem(error)
            for error in exc.errors(include_input=False, include_url=False)
            if enabled or not _absent(error)
        ]
    faulty = {p["field"] for p in problems}
    for path in _url_paths(channel_type, metadata):
        url, field = _at(metadata, path), _field(path)
        if isinstance(url, str) and field not in faulty:
            try:
                check_url(url, allow_private, field)
            except Invalid as exc:
                problems.extend(exc.details)
    return problems


def check_settings(
    channel_type: ChannelType, metadata: JsonObject, *, enabled: bool, allow_private: bool
) -> None:
    """``Invalid`` (400 ``ERR_VALIDATION``) naming every problem of ``metadata``."""
    problems = settings_problems(
        channel_type, metadata, enabled=enabled, allow_private=allow_private
    )
    if problems:
        said = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise Invalid(
            f"The {channel_type} channel's settings are not valid.",
            dev_message=f"{said} (API.md, Channels: provider settings in metadata).",
            details=problems,
        )


def with_signing_secret(metadata: JsonObject, secret: str) -> JsonObject:
    """A new custom channel's metadata: the client's, with ``secret`` as its signing
    secret (whatever signing keys the client sent are dropped)."""
    return {**_without_signing_keys(metadata), SIGNING_SECRET: secret}


def keep_signing_keys(new: JsonObject, current: JsonObject) -> JsonObject:
    """An updated custom channel's metadata: ``new``, with the stored signing keys."""
    kept = {key: current[key] for key in SIGNING_KEYS if key in current}
    return {**_without_signing_keys(new), **kept}


def _without_signing_keys(metadata: JsonObject) -> JsonObject:
    dropped = (*SIGNING_KEYS, *_SIGNING_TWINS)
    return {key: value for key, value in metadata.items() if key not in dropped}


def _absent(error: ErrorDetails) -> bool:
    # A rule on the whole model (push's "fcm or apns") is about what is absent too.
    return error["type"] in _ABSENT or (error["type"] == "value_error" and not error["loc"])


def _problem(error: ErrorDetails) -> Problem:
    loc = [str(p) for p in error["loc"]]
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] in _TAG_ERRORS:
        loc, message = ["provider"], f"must be {' or '.join(SMS_PROVIDERS)}"
    elif loc and loc[0] in SMS_PROVIDERS:
        loc = loc[1:]
    return {"field": _field(loc), "message": message}


def _field(path: Sequence[str]) -> str:
    return ".".join(("metadata", *path))


def _url_paths(channel_type: ChannelType, metadata: JsonObject) -> tuple[Path, ...]:
    if channel_type == "sms":
        return _URLS.get(f"sms:{metadata.get('provider')}", ())
    return _URLS.get(channel_type, ())


def _at(metadata: JsonObject, path: Path) -> JsonValue:
    """The value at ``path``, through a service account given as a JSON string."""
    value: JsonValue = metadata
    for key in path:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return None
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
