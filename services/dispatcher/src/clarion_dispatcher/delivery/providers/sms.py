"""The client of an ``sms`` channel: Twilio's Messages API or a generic HTTP endpoint,
as the channel's ``provider`` says (:mod:`clarion_shared.channel_settings.sms`)."""

from __future__ import annotations

from pydantic import ValidationError

from clarion_shared.channel_settings.http_common import problem
from clarion_shared.channel_settings.sms import SMS_SETTINGS, TwilioSettings
from clarion_shared.contracts.config_channels import ChannelConfig

from .base import ConfigError
from .sms_http import HttpSmsClient
from .twilio import TwilioClient


def build(config: ChannelConfig, *, allow_private: bool = False) -> TwilioClient | HttpSmsClient:
    """The channel's client; ``ConfigError`` (in words) when its settings cannot work.
    ``allow_private``: ``CLARION_WEBHOOKS_ALLOW_PRIVATE`` (loopback and private hosts)."""
    try:
        settings = SMS_SETTINGS.validate_python(config.metadata)
    except ValidationError as exc:
        raise ConfigError(problem(exc, f"sms channel {config.channel_id}")) from None
    if isinstance(settings, TwilioSettings):
        return TwilioClient(settings, allow_private=allow_private)
    return HttpSmsClient(settings, allow_private=allow_private)
