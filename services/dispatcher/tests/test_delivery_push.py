"""The push provider (FCM HTTP v1 and APNs): settings, the pure rules, and real sends
to the local FCM (with its OAuth2 token endpoint) and APNs servers of
``clarion_devtools.fake_push``, which check every request against the providers'
documented contracts: each kind of answer, token caching and refresh, HTTP/2, shared
connections, close."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from pydantic import ValidationError

from clarion_devtools.fake_push import (
    Answer,
    FakeApns,
    FakeFcm,
    Tls,
    apns_auth_key,
    self_signed,
    service_account,
)
from clarion_dispatcher.delivery.providers import apns as apns_api
from clarion_dispatcher.delivery.providers import fcm as fcm_api
from clarion_dispatcher.delivery.providers.base import (
    ERR_CHANNEL_CONFIG,
    ERR_INVALID_PUSH_TOKEN,
    ERR_NO_CONTACT_POINT,
    ERR_PROVIDER_REJECTED,
    ERR_PROVIDER_UNAVAILABLE,
    ConfigError,
    Failed,
    Outbound,
    Outcome,
    Retry,
    Sent,
)
from clarion_dispatcher.delivery.providers.push import PushProvider, build
from clarion_dispatcher.delivery.providers.push_rules import (
    PushMessage,
    PushToken,
    failed,
    invalid,
    outcome_of,
    push_tokens,
    retry,
    sent,
)
from clarion_shared.channel_settings.push import (
    APNS_PRODUCTION_URL,
    APNS_SANDBOX_URL,
    GOOGLE_TOKEN_URI,
    PushSettings,
)
from clarion_shared.contracts.config_channels import ChannelConfig

PROJECT = "clarion-test"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


def channel(metadata: dict[str, Any], channel_type: str = "push") -> ChannelConfig:
    return ChannelConfig.model_validate(
        {
            "app_id": "app1",
            "channel_id": "push",
            "name": "Push",
            "channel_type": channel_type,
            "enabled": True,
            "metadata": metadata,
            "updated_at": 1,
        }
    )


def outbound(*tokens: tuple[str, str], key: str | None = None, **content: Any) -> Outbound:
    return Outbound(
        idempotency_key=key or f"del_{uuid.uuid4().hex[:12]}",
        app_id="app1",
        send_id="ntf_1",
        uid="ada",
        channel_id="push",
        content={"title": "Hello", "body": "Ada", **content},
        contact={"pushTokens": [{"token": t, "platform": p} for t, p in tokens]},
    )


def detail(outcome: Outcome, key: str) -> list[Any]:
    """``Sent.detail[key]``: the list of tokens (``tokens``, ``invalidTokens``)."""
    assert isinstance(outcome, Sent), outcome
    value = outcome.detail[key]
    assert isinstance(value, list)
    return value


def device() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex  # 64 hex digits, as an iPhone's


def fcm_token() -> str:
    return f"fcm-{uuid.uuid4().hex}:APA91b{uuid.uuid4().hex}"


# ---------------------------------------------------------------- settings


def test_settings_read_api_md_names_and_ignore_other_keys() -> None:
    key = apns_auth_key()
    account = service_account("a@p.iam.gserviceaccount.com", GOOGLE_TOKEN_URI, PROJECT)
    settings = PushSettings.model_validate(
        {
            "fcm": {"projectId": PROJECT, "serviceAccount": json.dumps(account)},
            "apns": {
                "teamId": "ABCDE12345",
                "keyId": "KEY1234567",
                "privateKey": key,
                "bundleId": "com.example.app",
                "production": False,
            },
            "rateLimitPerSecond": 50,
            "somethingElse": True,
        }
    )
    assert settings.fcm is not None
    assert settings.apns is not None
    assert settings.fcm.service_account.client_email == "a@p.iam.gserviceaccount.com"
    assert (
        settings.fcm.send_url == f"https://fcm.googleapis.com/v1/projects/{PROJECT}/messages:send"
    )
    assert settings.fcm.oauth_url == GOOGLE_TOKEN_URI
    assert settings.apns.endpoint == APNS_SANDBOX_URL
    assert settings.rate_limit_per_second == 50
    assert settings.timeout_seconds == 10
    assert key not in repr(settings)
    assert account["private_key"] not in repr(settings)
    production = settings.apns.model_copy(update={"production": True})
    assert production.endpoint == APNS_PRODUCTION_URL
    override = {**account, "token_uri": "https://tokens.example/t/"}
    fcm = PushSettings.model_validate(
        {"fcm": {"projectId": PROJECT, "serviceAccount": override, "tokenUrl": "https://x.example"}}
    ).fcm
    assert fcm is not None
    assert fcm.oauth_url == "https://x.example"
    assert fcm.service_account.token_uri == "https://tokens.example/t"


@pytest.mark.parametrize(
    ("metadata", "where"),
    [
        ({}, "fcm or apns"),
        ({"fcm": {"projectId": PROJECT, "serviceAccount": "{not json"}}, "serviceAccount"),
        ({"fcm": {"projectId": PROJECT, "serviceAccount": {"client_email": "a@b"}}}, "private_key"),
        (
            {
                "apns": {
                    "teamId": "abc",
                    "keyId": "KEY1234567",
                    "privateKey": "-----BEGIN PRIVATE KEY-----",
                    "bundleId": "b",
                }
            },
            "teamId",
        ),
        (
            {
                "apns": {
                    "teamId": "ABCDE12345",
                    "keyId": "KEY1234567",
                    "privateKey": "secret",
                    "bundleId": "b",
                }
            },
            "privateKey",
        ),
        (
            {
                "apns": {
                    "teamId": "ABCDE12345",
                    "keyId": "KEY1234567",
                    "privateKey": "-----BEGIN PRIVATE KEY-----",
                    "bundleId": "b",
                    "baseUrl": "ftp://x",
                }
            },
            "baseUrl",
        ),
    ],
)
def test_settings_refuse_what_cannot_work(metadata: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError, match=where):
        PushSettings.model_validate(metadata)


def test_build_says_in_words_what_is_wrong_without_echoing_secrets() -> None:
    with pytest.raises(ConfigError, match="not push"):
        build(channel({}, "email"))
    secret = "-----BEGIN PRIVATE KEY-----\nTOPSECRET\n-----END PRIVATE KEY-----"
    apns = {"teamId": "bad", "keyId": "KEY1234567", "privateKey": secret, "bundleId": "b"}
    with pytest.raises(ConfigError, match=r"apns\.teamId") as caught:
        build(channel({"apns": apns}))
    assert "TOPSECRET" not in str(caught.value)
    with pytest.raises(ConfigError, match="readable PEM"):
        build(channel({"apns": {**apns, "teamId": "ABCDE12345"}}))
    rsa = service_account("a@b.c", GOOGLE_TOKEN_URI, PROJECT)["private_key"]
    with pytest.raises(ConfigError, match="EC P-256"):
        build(channel({"apns": {**apns, "teamId": "ABCDE12345", "privateKey": rsa}}))
    account = {"client_email": "a@b.c", "private_key": apns_auth_key()}
    with pytest.raises(ConfigError, match="not an RSA key"):
        build(channel({"fcm": {"projectId": PROJECT, "serviceAccount": account}}))


def test_build_applies_the_private_address_rule() -> None:
    account = service_account("a@b.c", GOOGLE_TOKEN_URI, PROJECT)
    fcm = {"projectId": PROJECT, "serviceAccount": account}
    with pytest.raises(ConfigError, match=r"fcm\.baseUrl must be an https URL"):
        build(channel({"fcm": {**fcm, "baseUrl": "http://fcm.example"}}))
    with pytest.raises(ConfigError, match=r"fcm\.tokenUrl"):
        build(channel({"fcm": {**fcm, "tokenUrl": "https://127.0.0.1:9/token"}}))
    apns = {
        "teamId": "ABCDE12345",
        "keyId": "KEY1234567",
        "privateKey": apns_auth_key(),
        "bundleId": "b",
        "baseUrl": "https://localhost:9",
    }
    with pytest.raises(ConfigError, match=r"apns\.baseUrl"):
        build(channel({"apns": apns}))


# ---------------------------------------------------------------- pure rules


def test_push_tokens_are_read_in_order_without_repeats_or_junk() -> None:
    contact: dict[str, Any] = {
        "pushTokens": [
            {"token": " a ", "platform": "fcm"},
            {"token": "a", "platform": "fcm"},
            {"token": "a", "platform": "apns"},
            {"token": "", "platform": "fcm"},
            {"token": "b", "platform": "web"},
            {"token": 5, "platform": "fcm"},
            "c",
        ]
    }
    assert push_tokens(contact) == [PushToken("a", "fcm"), PushToken("a", "apns")]
    assert push_tokens({}) == []
    assert push_tokens({"pushTokens": "x"}) == []


def test_the_message_carries_title_body_data_and_the_delivery_ids() -> None:
    message = PushMessage.of(
        outbound(key="del_1", image={"url": "u"}, n=3, s="x", **{"from": "f", "gcm.x": "y"})
    )
    assert (message.key, message.title, message.body) == ("del_1", "Hello", "Ada")
    assert message.string_data() == {
        "image": '{"url":"u"}',
        "n": "3",
        "s": "x",
        "notificationId": "ntf_1",
        "deliveryId": "del_1",
    }
    body = json.loads(apns_api.payload(message))
    assert body["aps"] == {"alert": {"title": "Hello", "body": "Ada"}}
    assert body["image"] == {"url": "u"}
    assert body["deliveryId"] == "del_1"
    a, b = apns_api.apns_id("del_1", "t1"), apns_api.apns_id("del_1", "t2")
    assert a == apns_api.apns_id("del_1", "t1") != b
    assert uuid.UUID(a).version == 5


A, B, C = PushToken("tok-a", "fcm"), PushToken("tok-b", "apns"), PushToken("tok-c", "fcm")


def test_outcome_sent_when_any_token_accepted_and_lists_the_invalid_ones() -> None:
    outcome = outcome_of(
        [sent(A, "m1"), invalid(B, "Unregistered", "gone"), retry(C, "503", "busy")]
    )
    assert isinstance(outcome, Sent)
    assert outcome.provider_id == "m1"
    assert detail(outcome, "invalidTokens") == ["tok-b"]
    assert outcome.invalid_tokens == ("tok-b",)
    assert [t["status"] for t in detail(outcome, "tokens")] == ["sent", "invalid", "retry"]


def test_outcome_retry_when_none_accepted_and_one_is_transient() -> None:
    outcome = outcome_of(
        [
            retry(A, "429", "slow down", 3.0),
            invalid(B, "BadDeviceToken", "bad"),
            retry(C, "503", "busy", 10.0),
        ]
    )
    assert isinstance(outcome, Retry)
    assert isinstance(outcome, Retry)
    assert outcome.code == ERR_PROVIDER_UNAVAILABLE
    assert outcome.retry_after_s == 10.0
    assert outcome.invalid_tokens == ("tok-b",)
    assert "tok-b" not in outcome.message
    assert "slow down" in outcome.message


def test_outcome_failed_when_every_token_is_invalid_or_refused() -> None:
    every = outcome_of([invalid(A, "UNREGISTERED", "x"), invalid(B, "Unregistered", "y")])
    assert isinstance(every, Failed)
    assert every.code == ERR_INVALID_PUSH_TOKEN
    assert every.invalid_tokens == ("tok-a", "tok-b")
    config = outcome_of(
        [
            failed(A, ERR_PROVIDER_REJECTED, "SENDER_ID_MISMATCH", "x"),
            failed(B, ERR_CHANNEL_CONFIG, "InvalidProviderToken", "y"),
            invalid(C, "U", "z"),
        ]
    )
    assert isinstance(config, Failed)
    assert config.code == ERR_CHANNEL_CONFIG
    assert config.invalid_tokens == ("tok-c",)
    none = outcome_of([])
    assert isinstance(none, Failed)
    assert none.code == ERR_NO_CONTACT_POINT


def _fcm_answer(status: int, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def _google(
    status: int, code: str, message: str, fcm: str | None, field: str | None = None
) -> dict[str, Any]:
    details: list[dict[str, Any]] = []
    if fcm:
        details.append({"@type": fcm_api.FCM_ERROR_TYPE, "errorCode": fcm})
    if field:
        details.append(
            {
                "@type": fcm_api.BAD_REQUEST_TYPE,
                "fieldViolations": [{"field": field, "description": message}],
            }
        )
    return {"error": {"code": status, "message": message, "status": code, "details": details}}


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (200, {"name": "projects/p/messages/1"}, {}, ("sent", None, None)),
        (
            404,
            _google(404, "NOT_FOUND", "gone", "UNREGISTERED"),
            {},
            ("invalid", ERR_INVALID_PUSH_TOKEN, "UNREGISTERED"),
        ),
        (
            400,
            _google(
                400,
                "INVALID_ARGUMENT",
                "The registration token is not a valid FCM registration token",
                "INVALID_ARGUMENT",
            ),
            {},
            ("invalid", ERR_INVALID_PUSH_TOKEN, "INVALID_ARGUMENT"),
        ),
        (
            400,
            _google(400, "INVALID_ARGUMENT", "bad", "INVALID_ARGUMENT", "message.token"),
            {},
            ("invalid", ERR_INVALID_PUSH_TOKEN, "INVALID_ARGUMENT"),
        ),
        (
            400,
            _google(
                400,
                "INVALID_ARGUMENT",
                "Invalid value at 'message.data[0].value'",
                None,
                "message.data[0].value",
            ),
            {},
            ("failed", ERR_PROVIDER_REJECTED, "INVALID_ARGUMENT"),
        ),
        (
            403,
            _google(403, "PERMISSION_DENIED", "no", "SENDER_ID_MISMATCH"),
            {},
            ("failed", ERR_PROVIDER_REJECTED, "SENDER_ID_MISMATCH"),
        ),
        (
            403,
            _google(403, "PERMISSION_DENIED", "no", None),
            {},
            ("failed", ERR_CHANNEL_CONFIG, "PERMISSION_DENIED"),
        ),
        (
            401,
            _google(401, "UNAUTHENTICATED", "no", "THIRD_PARTY_AUTH_ERROR"),
            {},
            ("failed", ERR_CHANNEL_CONFIG, "THIRD_PARTY_AUTH_ERROR"),
        ),
        (
            429,
            _google(429, "RESOURCE_EXHAUSTED", "q", "QUOTA_EXCEEDED"),
            {"retry-after": "7"},
            ("retry", ERR_PROVIDER_UNAVAILABLE, "QUOTA_EXCEEDED"),
        ),
        (503, {}, {}, ("retry", ERR_PROVIDER_UNAVAILABLE, "503")),
    ],
)
def test_fcm_answers_are_classified(
    status: int, body: dict[str, Any], headers: dict[str, str], expected: tuple[Any, ...]
) -> None:
    result = fcm_api.classify(A, _fcm_answer(status, body, **headers))
    assert (result.status, result.error, result.reason) == expected
    if headers:
        assert result.retry_after_s == 7.0


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (400, "BadDeviceToken", ("invalid", ERR_INVALID_PUSH_TOKEN)),
        (410, "Unregistered", ("invalid", ERR_INVALID_PUSH_TOKEN)),
        (429, "TooManyRequests", ("retry", ERR_PROVIDER_UNAVAILABLE)),
        (500, "InternalServerError", ("retry", ERR_PROVIDER_UNAVAILABLE)),
        (503, "ServiceUnavailable", ("retry", ERR_PROVIDER_UNAVAILABLE)),
        (403, "InvalidProviderToken", ("failed", ERR_CHANNEL_CONFIG)),
        (400, "BadTopic", ("failed", ERR_CHANNEL_CONFIG)),
        (400, "DeviceTokenNotForTopic", ("failed", ERR_PROVIDER_REJECTED)),
        (413, "PayloadTooLarge", ("failed", ERR_PROVIDER_REJECTED)),
    ],
)
def test_apns_answers_are_classified(status: int, reason: str, expected: tuple[str, str]) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    answer = httpx.Response(status, json={"reason": reason}, headers={"retry-after": when})
    result = apns_api.classify(B, answer, "id-1")
    assert (result.status, result.error, result.reason) == (*expected, reason)
    if result.status == "retry":
        assert result.retry_after_s is not None
        assert 25 < result.retry_after_s <= 30
    ok = apns_api.classify(B, httpx.Response(200, headers={"apns-id": "X"}), "id-1")
    assert (ok.status, ok.provider_id) == ("sent", "X")


# ---------------------------------------------------------------- against local servers


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return self_signed(Path(tmp_path_factory.mktemp("push-tls")))


@pytest.fixture
async def fcm(tls: Tls) -> AsyncIterator[FakeFcm]:
    server = FakeFcm(PROJECT, tls)
    await server.server.start()
    yield server
    await server.server.stop()


@pytest.fixture
async def apns(tls: Tls) -> AsyncIterator[FakeApns]:
    server = FakeApns(tls)
    await server.server.start()
    yield server
    await server.server.stop()


class Clock:
    """Unix time moved by ``offset`` seconds: the provider's view of now."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def __call__(self) -> float:
        return time.time() + self.offset


@asynccontextmanager
async def client(
    tls: Tls, metadata: dict[str, Any], clock: Callable[[], float] = time.time
) -> AsyncIterator[PushProvider]:
    provider = build(
        channel(metadata), allow_private=True, ssl_context=tls.client_context(), clock=clock
    )
    try:
        yield provider
    finally:
        await provider.close()


def fcm_settings(fcm: FakeFcm, **more: Any) -> dict[str, Any]:
    return {
        "projectId": PROJECT,
        "serviceAccount": fcm.new_account(),
        "baseUrl": fcm.base_url,
        **more,
    }


def token_calls(fcm: FakeFcm) -> int:
    return sum(1 for r in fcm.requests if r.path == "/token")


@pytest.mark.integration
async def test_fcm_send_follows_the_http_v1_contract(tls: Tls, fcm: FakeFcm) -> None:
    settings = fcm_settings(fcm)
    token = fcm_token()
    async with client(tls, {"fcm": settings}) as push:
        outcome = await push.send(outbound((token, "fcm"), key="del_fcm", badge=2))
    assert isinstance(outcome, Sent)
    [accepted] = fcm.accepted
    assert outcome.provider_id is not None
    assert outcome.provider_id.startswith(f"projects/{PROJECT}/messages/")
    assert accepted.request.path == f"/v1/projects/{PROJECT}/messages:send"
    assert accepted.body == {
        "message": {
            "token": token,
            "notification": {"title": "Hello", "body": "Ada"},
            "data": {"badge": "2", "notificationId": "ntf_1", "deliveryId": "del_fcm"},
        }
    }
    [claims] = fcm.token_requests
    account = settings["serviceAccount"]
    assert claims["iss"] == account["client_email"]
    assert claims["scope"] == FCM_SCOPE
    assert claims["aud"] == fcm.token_url
    assert claims["exp"] - claims["iat"] == 3600
    [bearer] = {r.headers["authorization"] for r in fcm.requests if r.path != "/token"}
    assert bearer.startswith("Bearer ya29.fake-")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("answer", "kind", "code", "wait"),
    [
        (Answer("unregistered"), Failed, ERR_INVALID_PUSH_TOKEN, None),
        (Answer("invalid"), Failed, ERR_INVALID_PUSH_TOKEN, None),
        (Answer("rate_limited", retry_after="7"), Retry, ERR_PROVIDER_UNAVAILABLE, 7.0),
        (Answer("unavailable", retry_after="2"), Retry, ERR_PROVIDER_UNAVAILABLE, 2.0),
        (Answer("error"), Retry, ERR_PROVIDER_UNAVAILABLE, None),
        (Answer(delay_s=1.5), Retry, ERR_PROVIDER_UNAVAILABLE, None),  # past the timeout
    ],
)
async def test_fcm_answers_come_to_outcomes(
    tls: Tls, fcm: FakeFcm, answer: Answer, kind: type, code: str, wait: float | None
) -> None:
    token = fcm_token()
    fcm.answers[token] = answer
    async with client(tls, {"fcm": fcm_settings(fcm), "timeoutSeconds": 0.5}) as push:
        outcome = await push.send(outbound((token, "fcm")))
    assert isinstance(outcome, kind), outcome
    assert isinstance(outcome, Retry | Failed)
    assert outcome.code == code
    if isinstance(outcome, Failed):
        assert outcome.invalid_tokens == (token,)
    if isinstance(outcome, Retry):
        assert outcome.retry_after_s == wait
    assert fcm.accepted == []


@pytest.mark.integration
async def test_fcm_access_token_is_cached_shared_and_refreshed_before_expiry(
    tls: Tls, fcm: FakeFcm
) -> None:
    clock = Clock(-3400)  # the first token expires (by the provider's clock) in 199 s
    fcm.token_answer = Answer(delay_s=0.3)  # so that the first sends all wait for it
    async with client(tls, {"fcm": fcm_settings(fcm)}, clock) as push:
        outcomes = await asyncio.gather(
            *(push.send(outbound((fcm_token(), "fcm"))) for _ in range(20))
        )
        assert all(isinstance(o, Sent) for o in outcomes)
        assert token_calls(fcm) == 1  # one exchange for twenty concurrent sends
        await push.send(outbound((fcm_token(), "fcm")))
        assert token_calls(fcm) == 1
        clock.offset = 0  # now within 5 minutes of its expiry: replaced first
        assert isinstance(await push.send(outbound((fcm_token(), "fcm"))), Sent)
        assert token_calls(fcm) == 2
    bearers = [r.headers["authorization"] for r in fcm.requests if r.path != "/token"]
    assert len(set(bearers)) == 2
    assert bearers[-1] != bearers[0]


@pytest.mark.integration
async def test_fcm_401_gets_a_new_token_once(tls: Tls, fcm: FakeFcm) -> None:
    async with client(tls, {"fcm": fcm_settings(fcm)}) as push:
        assert isinstance(await push.send(outbound((fcm_token(), "fcm"))), Sent)
        fcm.revoke()  # the cached token now answers 401
        assert isinstance(await push.send(outbound((fcm_token(), "fcm"))), Sent)
        assert token_calls(fcm) == 2
        fcm.revoke()
        fcm.token_lifetime_s = 0  # and every token issued from now on is already dead
        outcome = await push.send(outbound((fcm_token(), "fcm")))
    assert isinstance(outcome, Failed)
    assert outcome.code == ERR_CHANNEL_CONFIG
    assert token_calls(fcm) == 3  # one after the send's 401, and no more
    assert len(fcm.accepted) == 2


@pytest.mark.integration
async def test_fcm_token_endpoint_failures(tls: Tls, fcm: FakeFcm) -> None:
    stranger = service_account("x@p.iam.gserviceaccount.com", fcm.token_url, PROJECT)
    refused = {"projectId": PROJECT, "serviceAccount": stranger, "baseUrl": fcm.base_url}
    async with client(tls, {"fcm": refused}) as push:
        outcome = await push.send(outbound((fcm_token(), "fcm")))
    assert isinstance(outcome, Failed)
    assert outcome.code == ERR_CHANNEL_CONFIG
    assert "invalid_grant" in outcome.message
    fcm.token_answer = Answer("unavailable", retry_after="3", delay_s=0.2)
    async with client(tls, {"fcm": fcm_settings(fcm)}) as push:
        before = token_calls(fcm)
        outcomes = await asyncio.gather(
            *(push.send(outbound((fcm_token(), "fcm"))) for _ in range(10))
        )
    assert all(isinstance(o, Retry) and o.retry_after_s == 3.0 for o in outcomes)
    assert token_calls(fcm) == before + 1  # those that waited took the same answer


@pytest.mark.integration
async def test_fcm_token_url_and_project_are_those_configured(tls: Tls, fcm: FakeFcm) -> None:
    account = service_account("y@p.iam.gserviceaccount.com", GOOGLE_TOKEN_URI, PROJECT)
    fcm.trust(account)
    fcm.audience = GOOGLE_TOKEN_URI  # a stand-in in front of Google's token endpoint
    settings = {
        "projectId": PROJECT,
        "serviceAccount": account,
        "baseUrl": fcm.base_url,
        "tokenUrl": fcm.token_url,
    }
    async with client(tls, {"fcm": settings}) as push:
        assert isinstance(await push.send(outbound((fcm_token(), "fcm"))), Sent)
    async with client(tls, {"fcm": {**settings, "projectId": "someone-else"}}) as push:
        outcome = await push.send(outbound((fcm_token(), "fcm")))
    assert isinstance(outcome, Failed)
    assert outcome.code == ERR_CHANNEL_CONFIG
    assert "PERMISSION_DENIED" in outcome.message


@pytest.mark.integration
async def test_apns_send_follows_apples_contract_over_http2(tls: Tls, apns: FakeApns) -> None:
    token = device()
    async with client(tls, {"apns": apns.settings()}) as push:
        started = int(time.time())
        outcome = await push.send(outbound((token, "apns"), key="del_apns", badge=2))
    assert isinstance(outcome, Sent)
    [accepted] = apns.accepted
    headers = accepted.request.headers
    assert accepted.request.path == f"/3/device/{token}"
    assert accepted.request.http_version == "2"
    assert apns.server.http_versions == {"2"}
    assert headers["apns-topic"] == apns.bundle_id
    assert headers["apns-push-type"] == "alert"
    assert headers["apns-priority"] == "10"
    assert headers["apns-id"] == apns_api.apns_id("del_apns", token) == outcome.provider_id
    assert started + 86_400 <= int(headers["apns-expiration"]) <= int(time.time()) + 86_400
    assert accepted.body == {
        "aps": {"alert": {"title": "Hello", "body": "Ada"}},
        "badge": 2,
        "notificationId": "ntf_1",
        "deliveryId": "del_apns",
    }
    provider_token = headers["authorization"].removeprefix("bearer ")
    assert jwt.get_unverified_header(provider_token) == {"alg": "ES256", "kid": apns.key_id}
    claims = jwt.decode(provider_token, options={"verify_signature": False})
    assert claims["iss"] == apns.team_id
    assert abs(claims["iat"] - time.time()) < 60


@pytest.mark.integration
@pytest.mark.parametrize(
    ("answer", "kind", "code", "wait"),
    [
        (Answer("invalid"), Failed, ERR_INVALID_PUSH_TOKEN, None),
        (Answer("unregistered"), Failed, ERR_INVALID_PUSH_TOKEN, None),
        (Answer("rate_limited", retry_after="9"), Retry, ERR_PROVIDER_UNAVAILABLE, 9.0),
        (Answer("error"), Retry, ERR_PROVIDER_UNAVAILABLE, None),
        (Answer("unavailable"), Retry, ERR_PROVIDER_UNAVAILABLE, None),
        (Answer(delay_s=1.5), Retry, ERR_PROVIDER_UNAVAILABLE, None),  # past the timeout
    ],
)
async def test_apns_answers_come_to_outcomes(
    tls: Tls, apns: FakeApns, answer: Answer, kind: type, code: str, wait: float | None
) -> None:
    token = device()
    apns.answers[token] = answer
    async with client(tls, {"apns": apns.settings(), "timeoutSeconds": 0.5}) as push:
        outcome = await push.send(outbound((token, "apns")))
    assert isinstance(outcome, kind), outcome
    assert isinstance(outcome, Retry | Failed)
    assert outcome.code == code
    if isinstance(outcome, Failed):
        assert outcome.invalid_tokens == (token,)
    if isinstance(outcome, Retry):
        assert outcome.retry_after_s == wait
    assert apns.accepted == []


@pytest.mark.integration
async def test_apns_jwt_is_reused_and_renewed_every_50_minutes(tls: Tls, apns: FakeApns) -> None:
    clock = Clock(-55 * 60)
    async with client(tls, {"apns": apns.settings()}, clock) as push:
        for _ in range(3):
            assert isinstance(await push.send(outbound((device(), "apns"))), Sent)
        clock.offset = -36 * 60  # 19 minutes later: Apple refuses renewals this often
        assert isinstance(await push.send(outbound((device(), "apns"))), Sent)
        assert len(apns.provider_tokens) == 1
        clock.offset = 0  # 55 minutes after it was made: renewed before Apple refuses it
        assert isinstance(await push.send(outbound((device(), "apns"))), Sent)
    assert len(apns.provider_tokens) == 2
    iats = [jwt.decode(t, options={"verify_signature": False})["iat"] for t in apns.provider_tokens]
    assert iats[1] - iats[0] >= 55 * 60 - 2


@pytest.mark.integration
async def test_apns_403_renews_the_jwt_once(tls: Tls, apns: FakeApns) -> None:
    async with client(tls, {"apns": apns.settings()}) as push:
        assert isinstance(await push.send(outbound((device(), "apns"))), Sent)
        apns.revoke()  # ExpiredProviderToken for the JWT in use
        assert isinstance(await push.send(outbound((device(), "apns"))), Sent)
    assert len(apns.provider_tokens) == 2
    wrong_key = {**apns.settings(), "privateKey": apns_auth_key()}
    async with client(tls, {"apns": wrong_key}) as push:
        before = len(apns.requests)
        outcome = await push.send(outbound((device(), "apns")))
    assert isinstance(outcome, Failed)
    assert outcome.code == ERR_CHANNEL_CONFIG
    assert "InvalidProviderToken" in outcome.message
    assert len(apns.requests) == before + 2  # the send, and once more with a new JWT
    async with client(tls, {"apns": {**apns.settings(), "bundleId": "com.other"}}) as push:
        outcome = await push.send(outbound((device(), "apns")))
    assert isinstance(outcome, Failed)
    assert outcome.code == ERR_CHANNEL_CONFIG
    assert "BadTopic" in outcome.message


@pytest.mark.integration
async def test_a_user_with_several_tokens(tls: Tls, fcm: FakeFcm, apns: FakeApns) -> None:
    good, gone, dead, busy = fcm_token(), device(), fcm_token(), device()
    apns.answers[gone] = Answer("unregistered")
    fcm.answers[dead] = Answer("invalid")
    apns.answers[busy] = Answer("unavailable", retry_after="4")
    metadata = {"fcm": fcm_settings(fcm), "apns": apns.settings()}
    async with client(tls, metadata) as push:
        mixed = await push.send(outbound((good, "fcm"), (gone, "apns"), (dead, "fcm")))
        waiting = await push.send(outbound((busy, "apns"), (dead, "fcm")))
        all_dead = await push.send(outbound((gone, "apns"), (dead, "fcm")))
        unusable = await push.send(outbound(("abc", "apns")))
    assert isinstance(mixed, Sent)
    assert sorted(detail(mixed, "invalidTokens")) == sorted([gone, dead])
    statuses = {t["token"]: t["status"] for t in detail(mixed, "tokens")}
    assert statuses == {good: "sent", gone: "invalid", dead: "invalid"}
    assert isinstance(waiting, Retry)
    assert waiting.retry_after_s == 4.0
    assert waiting.invalid_tokens == (dead,)
    assert isinstance(all_dead, Failed)
    assert all_dead.code == ERR_INVALID_PUSH_TOKEN
    assert set(all_dead.invalid_tokens) == {gone, dead}
    assert isinstance(unusable, Failed)
    assert unusable.invalid_tokens == ("abc",)
    assert [a.token for a in fcm.accepted] == [good]


@pytest.mark.integration
async def test_no_usable_token_is_no_contact_point(tls: Tls, fcm: FakeFcm) -> None:
    async with client(tls, {"fcm": fcm_settings(fcm)}) as push:
        nothing = await push.send(outbound())
        other_platform = await push.send(outbound((device(), "apns")))
    for outcome in (nothing, other_platform):
        assert isinstance(outcome, Failed)
        assert outcome.code == ERR_NO_CONTACT_POINT
    assert isinstance(other_platform, Failed)
    assert "apns" in other_platform.message
    assert fcm.requests == []


@pytest.mark.integration
async def test_concurrent_sends_share_one_http2_connection(
    tls: Tls, fcm: FakeFcm, apns: FakeApns
) -> None:
    metadata = {"fcm": fcm_settings(fcm), "apns": apns.settings()}
    async with client(tls, metadata) as push:
        first = await push.send(outbound((fcm_token(), "fcm"), (device(), "apns")))
        assert isinstance(first, Sent)
        outcomes = await asyncio.gather(
            *(push.send(outbound((fcm_token(), "fcm"), (device(), "apns"))) for _ in range(100))
        )
    assert all(isinstance(o, Sent) for o in outcomes)
    assert (len(fcm.accepted), len(apns.accepted)) == (101, 101)
    assert len(apns.server.connections) == 1
    assert apns.server.http_versions == {"2"}
    assert len(fcm.server.connections) == 1
    assert fcm.server.http_versions == {"2"}


@pytest.mark.integration
async def test_close_releases_both_pools(tls: Tls, fcm: FakeFcm, apns: FakeApns) -> None:
    push = build(
        channel({"fcm": fcm_settings(fcm), "apns": apns.settings()}),
        allow_private=True,
        ssl_context=tls.client_context(),
    )
    assert isinstance(await push.send(outbound((fcm_token(), "fcm"), (device(), "apns"))), Sent)
    assert push.fcm is not None
    assert push.apns is not None
    assert not push.fcm.closed
    assert not push.apns.closed
    await push.close()
    assert push.fcm.closed
    assert push.apns.closed
    await push.close()  # a second close is harmless


@pytest.mark.integration
async def test_a_host_resolving_to_a_private_address_is_refused(tls: Tls) -> None:
    host = socket.gethostname()
    try:
        loopback = socket.gethostbyname(host).startswith("127.")
    except OSError:
        loopback = False
    if not loopback or host == "localhost":
        pytest.skip(f"{host} does not resolve to a loopback address here")
    apns = {
        "teamId": "ABCDE12345",
        "keyId": "KEY1234567",
        "privateKey": apns_auth_key(),
        "bundleId": "b",
        "baseUrl": f"https://{host}:9",
    }
    push = build(channel({"apns": apns}), ssl_context=tls.client_context())
    try:
        outcome = await push.send(outbound((device(), "apns")))
    finally:
        await push.close()
    assert isinstance(outcome, Failed)
    assert outcome.code == ERR_CHANNEL_CONFIG
    assert "refused address" in outcome.message
