"""The ``push`` channel's provider: FCM HTTP v1 and/or APNs, per the channel's settings
(``clarion_shared.channel_settings.push``).

A user's ``pushTokens`` (``[{token, platform: "fcm" | "apns"}]``) are split by platform
and each token is sent to by that platform's client (``fcm``, ``apns``); the results
fold into one outcome (``push_rules.outcome_of``). Tokens of a platform the channel
does not configure are left alone; a user with no token the channel can use is
``ERR_NO_CONTACT_POINT``. One ``PushProvider`` per channel configuration: each platform
client keeps its own connection pool and auth token for the provider's life.

Addresses follow ``CLARION_WEBHOOKS_ALLOW_PRIVATE`` as the other HTTP providers do
(``http_common``): unless ``allow_private``, every URL (``baseUrl``, the token URL) must
be https and its host is refused, before a socket exists, when it resolves to a
private or loopback address. TLS trust is the system's (``SSL_CERT_FILE`` /
``SSL_CERT_DIR`` when set, else the ``certifi`` bundle) unless ``ssl_context`` is given.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable

import httpcore
import httpx
from pydantic import ValidationError

from clarion_shared.channel_settings.http_common import problem
from clarion_shared.channel_settings.push import PushSettings
from clarion_shared.contracts.config_channels import ChannelConfig

from . import apns as apns_api
from . import fcm as fcm_api
from .apns import ApnsClient
from .base import ERR_NO_CONTACT_POINT, ConfigError, Failed, Outbound, Outcome
from .fcm import FcmClient
from .http_common import CONNECT_TIMEOUT_MAX_S, USER_AGENT, GuardedBackend, check_endpoint
from .push_rules import PushMessage, PushToken, TokenResult, outcome_of, push_tokens

MAX_PARALLEL_TOKENS = 8  # one user's tokens sent at once
KEEPALIVE_S = 60.0  # an idle connection is kept this long


def build(
    config: ChannelConfig,
    *,
    allow_private: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    clock: Callable[[], float] = time.time,
) -> PushProvider:
    """The client of a ``push`` channel; ConfigError (in words) when its metadata cannot
    work. ``allow_private``: ``CLARION_WEBHOOKS_ALLOW_PRIVATE`` (loopback and private
    hosts, plain http). ``ssl_context`` replaces the trust store (tests trust their
    server's certificate with it). ``clock`` (Unix seconds) dates the auth tokens."""
    if config.channel_type != "push":
        raise ConfigError(f"channel {config.channel_id} is {config.channel_type}, not push")
    try:
        settings = PushSettings.model_validate(config.metadata)
    except ValidationError as exc:
        raise ConfigError(problem(exc, f"push channel {config.channel_id}")) from None
    # Keys and URLs are checked before any connection pool exists: a refusal leaks none.
    fcm_key = apns_key = None
    if settings.fcm is not None:
        fcm_key = fcm_api.signing_key(settings.fcm)
        check_endpoint(settings.fcm.base_url, allow_private, "fcm.baseUrl")
        check_endpoint(settings.fcm.oauth_url, allow_private, "fcm.tokenUrl")
    if settings.apns is not None:
        apns_key = apns_api.signing_key(settings.apns)
        check_endpoint(settings.apns.endpoint, allow_private, "apns.baseUrl")
    tls = ssl_context or httpx.create_ssl_context(trust_env=True)
    fcm = apns = None
    if settings.fcm is not None and fcm_key is not None:
        http = _pool(settings, tls, http1=True, allow_private=allow_private)
        fcm = FcmClient(settings.fcm, fcm_key, http, clock=clock)
    if settings.apns is not None and apns_key is not None:
        http = _pool(settings, tls, http1=False, allow_private=allow_private)  # HTTP/2 only
        apns = ApnsClient(settings.apns, apns_key, http, clock=clock)
    return PushProvider(settings, fcm=fcm, apns=apns)


class _Transport(httpx.AsyncHTTPTransport):
    """httpx's transport with HTTP/2; unless ``allow_private``, over a pool that connects
    through ``GuardedBackend`` (it refuses private addresses). httpx takes no network
    backend, so that pool replaces the one httpx built, with the same limits."""

    def __init__(
        self, tls: ssl.SSLContext, limits: httpx.Limits, *, http1: bool, allow_private: bool
    ) -> None:
        super().__init__(verify=tls, http1=http1, http2=True, limits=limits, trust_env=False)
        if not allow_private:
            self._pool = httpcore.AsyncConnectionPool(
                ssl_context=tls,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                http1=http1,
                http2=True,
                network_backend=GuardedBackend(),
            )


def _pool(
    settings: PushSettings, tls: ssl.SSLContext, *, http1: bool, allow_private: bool
) -> httpx.AsyncClient:
    """One platform's pooled client. Connections stay open between sends, as Apple and
    Google ask; on HTTP/2 one connection carries many requests at once."""
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_connections,
        keepalive_expiry=KEEPALIVE_S,
    )
    timeout = httpx.Timeout(
        settings.timeout_seconds, connect=min(settings.timeout_seconds, CONNECT_TIMEOUT_MAX_S)
    )
    return httpx.AsyncClient(
        transport=_Transport(tls, limits, http1=http1, allow_private=allow_private),
        timeout=timeout,
        headers={"user-agent": USER_AGENT},
        follow_redirects=False,
        trust_env=False,
    )


class PushProvider:
    """Sends one delivery to every token of the user that the channel can reach."""

    def __init__(
        self,
        settings: PushSettings,
        *,
        fcm: FcmClient | None,
        apns: ApnsClient | None,
    ) -> None:
        self.settings = settings
        self.fcm = fcm
        self.apns = apns

    async def send(self, outbound: Outbound) -> Outcome:
        tokens = push_tokens(outbound.contact)
        if not tokens:
            return Failed(ERR_NO_CONTACT_POINT, "The user has no push token.")
        usable = [(t, c) for t in tokens if (c := self._client(t)) is not None]
        if not usable:
            platforms = ", ".join(sorted({t.platform for t in tokens}))
            return Failed(
                ERR_NO_CONTACT_POINT,
                f"The user's push tokens are for {platforms}, which this channel does not send to.",
            )
        message = PushMessage.of(outbound)
        parallel = asyncio.Semaphore(MAX_PARALLEL_TOKENS)

        async def one(token: PushToken, client: FcmClient | ApnsClient) -> TokenResult:
            async with parallel:
                return await client.send(token, message)

        return outcome_of(await asyncio.gather(*(one(t, c) for t, c in usable)))

    async def close(self) -> None:
        for client in (self.fcm, self.apns):
            if client is not None:
                await client.close()

    def _client(self, token: PushToken) -> FcmClient | ApnsClient | None:
        return self.fcm if token.platform == "fcm" else self.apns
