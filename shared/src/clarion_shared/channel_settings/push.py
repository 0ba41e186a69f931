"""Settings of a ``push`` channel (API.md Channels): FCM HTTP v1 and/or APNs.

``{fcm?: {projectId, serviceAccount, baseUrl?, tokenUrl?}, apns?: {teamId, keyId,
privateKey, bundleId, production?, baseUrl?}, rateLimitPerSecond?}``, at least one of
``fcm`` and ``apns``. ``serviceAccount`` is the service-account key file Google hands
out (a JSON object, or that JSON as a string): ``client_email``, ``private_key`` and
``token_uri`` are used. ``baseUrl`` and ``tokenUrl`` let a self-hosted or test server
stand in for Google's and Apple's (whether a private address may be called follows
``CLARION_WEBHOOKS_ALLOW_PRIVATE``, applied by the caller). Keys are checked for their
shape only here; the delivery worker parses them when it builds its client.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .http_common import HttpSettings, base_url

FCM_BASE_URL = "https://fcm.googleapis.com"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
APNS_PRODUCTION_URL = "https://api.push.apple.com"
APNS_SANDBOX_URL = "https://api.sandbox.push.apple.com"

_APPLE_ID = re.compile(r"^[A-Z0-9]{10}$")  # Team ID and Key ID: 10 characters
_PEM_KEY = re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")


def _optional_url(value: str | None) -> str | None:
    return None if value is None else base_url(value)


def _pem_key(value: str) -> str:
    if not _PEM_KEY.search(value):
        raise ValueError("must be a PEM private key (-----BEGIN PRIVATE KEY-----)")
    return value


class _Settings(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True
    )


class ServiceAccount(BaseModel):
    """The fields of a Google service-account key file that the OAuth2 flow uses
    (the file's own snake_case names)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    client_email: str = Field(min_length=3)
    private_key: str = Field(repr=False)
    token_uri: str = GOOGLE_TOKEN_URI
    private_key_id: str | None = None

    check_key = field_validator("private_key")(_pem_key)
    check_url = field_validator("token_uri")(base_url)


class FcmSettings(_Settings):
    project_id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")
    service_account: ServiceAccount
    base_url: str = FCM_BASE_URL
    token_url: str | None = None  # where the OAuth2 token is asked; the account's token_uri

    @field_validator("service_account", mode="before")
    @classmethod
    def _account_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError("must be the service-account JSON (object or string)") from None
        return value

    check_urls = field_validator("base_url", "token_url")(_optional_url)

    @property
    def send_url(self) -> str:
        return f"{self.base_url}/v1/projects/{self.project_id}/messages:send"

    @property
    def oauth_url(self) -> str:
        return self.token_url or self.service_account.token_uri


class ApnsSettings(_Settings):
    team_id: str = Field(pattern=_APPLE_ID.pattern)
    key_id: str = Field(pattern=_APPLE_ID.pattern)
    private_key: str = Field(repr=False)  # the .p8 auth key (PEM, EC P-256)
    bundle_id: str = Field(min_length=1, max_length=255)
    production: bool = True
    base_url: str | None = None
    expiration_seconds: int = Field(default=86_400, ge=0, le=30 * 86_400)  # apns-expiration

    check_key = field_validator("private_key")(_pem_key)
    check_url = field_validator("base_url")(_optional_url)

    @property
    def endpoint(self) -> str:
        if self.base_url is not None:
            return self.base_url
        return APNS_PRODUCTION_URL if self.production else APNS_SANDBOX_URL


class PushSettings(HttpSettings):
    """With the HTTP channels' ``rateLimitPerSecond``, ``timeoutSeconds`` (every network
    call) and ``maxConnections`` (per platform: HTTP/2 multiplexes on few)."""

    fcm: FcmSettings | None = None
    apns: ApnsSettings | None = None

    @model_validator(mode="after")
    def _one_provider(self) -> PushSettings:
        if self.fcm is None and self.apns is None:
            raise ValueError("a push channel needs fcm or apns settings (or both)")
        return self
