"""The SMS (Twilio and generic HTTP), WhatsApp Cloud API and custom HTTP clients.

Unit: E.164 contact points, settings parsing, the address rule, and how each
provider's answers are classified. Integration: real HTTP calls over sockets to local
servers implementing each provider's documented contract (``FakeMessaging``: auth,
paths, form and JSON shapes checked; the custom receiver verifies signatures with the
``standardwebhooks`` package), told per recipient to answer errors, 429s with
``Retry-After``, 5xx or slowly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpcore
import httpx
import pytest
from pydantic import ValidationError

from clarion_devtools.fake_messaging import FakeMessaging, Reply
from clarion_dispatcher.delivery.providers import custom_http, sms, whatsapp
from clarion_dispatcher.delivery.providers.base import (
    ERR_CHANNEL_CONFIG,
    ERR_INVALID_CONTACT_POINT,
    ERR_INVALID_CONTENT,
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
from clarion_dispatcher.delivery.providers.custom_http import CustomClient
from clarion_dispatcher.delivery.providers.http_common import (
    Answer,
    GuardedBackend,
    RefusedAddress,
    check_endpoint,
    classify_http,
    contact_number,
    new_client,
    post,
    transport_outcome,
)
from clarion_dispatcher.delivery.providers.sms_http import HttpSmsClient
from clarion_dispatcher.delivery.providers.twilio import TwilioClient
from clarion_dispatcher.delivery.providers.twilio import classify as classify_twilio
from clarion_dispatcher.delivery.providers.whatsapp import WhatsAppClient
from clarion_dispatcher.delivery.providers.whatsapp import classify as classify_whatsapp
from clarion_shared.channel_settings.custom import CustomSettings
from clarion_shared.channel_settings.sms import SMS_SETTINGS, HttpSmsSettings, TwilioSettings
from clarion_shared.channel_settings.whatsapp import WhatsAppContent, WhatsAppSettings
from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.config_channels import ChannelConfig
from clarion_shared.contracts.sends import ChannelType
from clarion_shared.e164 import is_e164
from clarion_shared.outbound_http import retry_after
from clarion_shared.webhook_signing import new_secret

NUMBER = "+15551230001"
HTTP_SMS: JsonObject = {"provider": "http", "url": "https://s.test"}
ACCOUNT = "AC" + "0" * 32


def outbound(
    number: str | None = NUMBER,
    content: JsonObject | None = None,
    key: str = "dlv_1",
    uid: str = "alice",
) -> Outbound:
    contact: JsonObject = {} if number is None else {"contactNumber": number}
    return Outbound(
        idempotency_key=key,
        app_id="app1",
        send_id="ntf_1",
        uid=uid,
        channel_id="ch1",
        content=content if content is not None else {"text": "Your code is 1234"},
        contact=contact,
        variables={"code": "1234"},
    )


def config(channel_type: ChannelType, metadata: JsonObject) -> ChannelConfig:
    return ChannelConfig(
        app_id="app1",
        channel_id="ch1",
        name="channel",
        channel_type=channel_type,
        enabled=True,
        metadata=metadata,
        updated_at=1,
    )


def answer(status: int, body: Any = None, **headers: str) -> Answer:
    import json

    raw = b"" if body is None else json.dumps(body).encode()
    return Answer(status, {k.replace("_", "-"): v for k, v in headers.items()}, raw, 1000.0)


# -- E.164 and contact points ---------------------------------------------------------


@pytest.mark.parametrize("value", ["+15551234567", "+442071838750", "+12", "+999999999999999"])
def test_e164_numbers_are_accepted(value: str) -> None:
    assert is_e164(value)


@pytest.mark.parametrize(
    "value",
    ["15551234567", "+05551234567", "+1 555 123 4567", "+1-555-1234", "+1", "+1234567890123456",
     "+1555123456\n", 15551234567, None],
)  # fmt: skip
def test_other_values_are_not_e164(value: object) -> None:
    assert not is_e164(value)


@pytest.mark.parametrize("contact", [{}, {"contactNumber": None}, {"contactNumber": "  "}])
def test_a_user_without_a_number_has_no_contact_point(contact: JsonObject) -> None:
    found = contact_number(contact)
    assert isinstance(found, Failed)
    assert found.code == ERR_NO_CONTACT_POINT


@pytest.mark.parametrize("number", ["5551234567", "+1 555 123", 15551234567, ["+15551234567"]])
def test_a_number_not_in_e164_is_an_invalid_contact_point(number: Any) -> None:
    found = contact_number({"contactNumber": number})
    assert isinstance(found, Failed)
    assert found.code == ERR_INVALID_CONTACT_POINT


# -- settings ---------------------------------------------------------------------------


def test_sms_settings_are_a_union_on_provider() -> None:
    twilio = SMS_SETTINGS.validate_python(
        {"provider": "twilio", "accountSid": ACCOUNT, "authToken": "t", "from": "+15550000000",
         "baseUrl": "https://twilio.test/", "rateLimitPerSecond": 10, "unknown": 1}
    )  # fmt: skip
    assert isinstance(twilio, TwilioSettings)
    assert twilio.messages_url == f"https://twilio.test/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert twilio.rate_limit_per_second == 10
    assert twilio.timeout_seconds == 10.0
    generic = SMS_SETTINGS.validate_python(
        {"provider": "http", "url": "https://sms.test/send", "headers": {"X-Key": "k"}}
    )
    assert isinstance(generic, HttpSmsSettings)
    assert generic.headers == {"X-Key": "k"}
    with pytest.raises(ValidationError):
        SMS_SETTINGS.validate_python({"provider": "nexmo", "url": "https://sms.test"})


def test_a_missing_key_is_named_and_no_credential_is_echoed() -> None:
    metadata: JsonObject = {"provider": "twilio", "authToken": "s3cret-token", "from": "nope!"}
    with pytest.raises(ConfigError) as raised:
        sms.build(config("sms", metadata))
    words = str(raised.value)
    assert "accountSid" in words
    assert "from" in words
    assert "s3cret-token" not in words


@pytest.mark.parametrize("sender", ["+15550000000", "ClarionTest", "12345", "MG" + "a" * 32])
def test_twilio_senders_take_the_forms_twilio_does(sender: str) -> None:
    settings = TwilioSettings.model_validate(
        {"provider": "twilio", "accountSid": ACCOUNT, "authToken": "t", "from": sender}
    )
    assert settings.uses_messaging_service == sender.startswith("MG")


@pytest.mark.parametrize(
    ("model", "metadata"),
    [
        (HttpSmsSettings, {**HTTP_SMS, "headers": {"Idempotency-Key": "x"}}),
        (HttpSmsSettings, {**HTTP_SMS, "headers": {"X-A": "a\r\nb"}}),
        (HttpSmsSettings, {"provider": "http", "url": "ftp://s.test"}),
        (HttpSmsSettings, {"provider": "http", "url": "https://user:pw@s.test"}),
        (CustomSettings, {"url": "https://c.test", "headers": {"webhook-signature": "v1,x"}}),
        (CustomSettings, {"url": "https://c.test", "signingSecret": "not-a-secret!"}),
        (WhatsAppSettings, {"phoneNumberId": "1", "accessToken": "t", "apiVersion": "21"}),
        (WhatsAppSettings, {"phoneNumberId": "+1555", "accessToken": "t"}),
    ],
)  # fmt: skip
def test_settings_that_cannot_work_are_refused(model: Any, metadata: JsonObject) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(metadata)


def test_custom_secrets_rotate_like_webhooks() -> None:
    new, old = new_secret(), new_secret()
    settings = CustomSettings.model_validate(
        {"url": "https://c.test", "signingSecret": new, "previousSigningSecret": old,
         "previousSecretExpiresAt": 5_000}
    )  # fmt: skip
    assert settings.secrets(4_999) == [new, old]
    assert settings.secrets(5_000) == [new]
    with pytest.raises(ConfigError, match="signingSecret"):
        custom_http.build(config("custom", {"url": "https://c.test"}))


def test_whatsapp_content_is_text_or_a_template() -> None:
    text = WhatsAppContent.model_validate({"text": "Hi", "previewUrl": True})
    assert text.message() == {"type": "text", "text": {"body": "Hi", "preview_url": True}}
    template = WhatsAppContent.model_validate(
        {"template": {"name": "order_update", "language": "en_US", "parameters": ["Ann", "42"],
                      "components": [{"type": "button", "sub_type": "url", "index": "0"}]}}
    )  # fmt: skip
    assert template.message() == {
        "type": "template",
        "template": {
            "name": "order_update",
            "language": {"code": "en_US"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "Ann"},
                                                {"type": "text", "text": "42"}]},
                {"type": "button", "sub_type": "url", "index": "0"},
            ],
        },
    }  # fmt: skip
    for neither_or_both in ({}, {"text": "a", "template": {"name": "n", "language": "en"}}):
        with pytest.raises(ValidationError):
            WhatsAppContent.model_validate(neither_or_both)


# -- the address rule -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://sms.test/send", "https://127.0.0.1/x", "https://[::1]/x", "https://10.1.2.3/",
     "https://169.254.169.254/", "https://localhost:8443/", "https://127.1/"],
)  # fmt: skip
def test_private_or_plain_http_endpoints_need_allow_private(url: str) -> None:
    with pytest.raises(ConfigError):
        check_endpoint(url, allow_private=False, field_name="url")
    check_endpoint(url, allow_private=True, field_name="url")


def test_a_public_https_endpoint_is_fine() -> None:
    check_endpoint("https://api.twilio.com", allow_private=False, field_name="baseUrl")
    check_endpoint("https://93.184.216.34/hook", allow_private=False, field_name="url")


class _Recorder(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self.connected: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        self.connected.append((host, port))
        return httpcore.AsyncMockStream([])

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def test_the_guard_connects_to_public_addresses_and_refuses_the_others() -> None:
    inner = _Recorder()
    guard = GuardedBackend(inner)
    await guard.connect_tcp("93.184.216.34", 443, timeout=1)
    assert inner.connected == [("93.184.216.34", 443)]
    for host in ("127.0.0.1", "localhost", "::1", "10.0.0.1", "169.254.169.254"):
        with pytest.raises(RefusedAddress):
            await guard.connect_tcp(host, 443, timeout=1)
    assert inner.connected == [("93.184.216.34", 443)]


# -- classification ---------------------------------------------------------------------


def _twilio(code: int) -> JsonObject:
    return {"code": code, "message": f"error {code}", "more_info": "https://www.twilio.com/docs"}


@pytest.mark.parametrize(
    ("reply", "kind", "code", "after"),
    [
        (answer(201, {"sid": "SM1", "status": "queued"}), Sent, None, None),
        (answer(429, _twilio(20429), retry_after="7"), Retry, "TWILIO_20429", 7.0),
        (answer(503), Retry, ERR_PROVIDER_UNAVAILABLE, None),
        (answer(400, _twilio(21611)), Retry, "TWILIO_21611", None),
        (answer(400, _twilio(21211)), Failed, "TWILIO_21211", None),
        (answer(400, _twilio(21610)), Failed, "TWILIO_21610", None),
        (answer(401, _twilio(20003)), Failed, ERR_CHANNEL_CONFIG, None),
        (answer(404, _twilio(20404)), Failed, ERR_CHANNEL_CONFIG, None),
        (answer(400, _twilio(21606)), Failed, ERR_CHANNEL_CONFIG, None),
        (answer(400, "not json"), Failed, ERR_PROVIDER_REJECTED, None),
    ],
)  # fmt: skip
def test_twilio_answers_are_classified(
    reply: Answer, kind: type, code: str | None, after: float | None
) -> None:
    outcome = classify_twilio(reply)
    assert isinstance(outcome, kind)
    if isinstance(outcome, Sent):
        assert outcome.provider_id == "SM1"
        return
    assert isinstance(outcome, Retry | Failed)
    assert outcome.code == code
    if isinstance(outcome, Retry):
        assert outcome.retry_after_s == after


def _graph(code: int) -> JsonObject:
    return {"error": {"message": f"(#{code}) x", "code": code, "error_data": {"details": "why"}}}


@pytest.mark.parametrize(
    ("reply", "kind", "code"),
    [
        (answer(400, _graph(130429)), Retry, "WHATSAPP_130429"),
        (answer(400, _graph(131048)), Retry, "WHATSAPP_131048"),
        (answer(400, _graph(4)), Retry, "WHATSAPP_4"),
        (answer(500, _graph(131000)), Retry, "WHATSAPP_131000"),
        (answer(503), Retry, ERR_PROVIDER_UNAVAILABLE),
        (answer(400, _graph(131026)), Failed, "WHATSAPP_131026"),
        (answer(404, _graph(132001)), Failed, "WHATSAPP_132001"),
        (answer(400, _graph(100)), Failed, "WHATSAPP_100"),
        (answer(401, _graph(190)), Failed, ERR_CHANNEL_CONFIG),
        (answer(500, _graph(3)), Failed, ERR_CHANNEL_CONFIG),
        (answer(403, _graph(200)), Failed, ERR_CHANNEL_CONFIG),
        (answer(403), Failed, ERR_CHANNEL_CONFIG),
        (answer(400), Failed, ERR_PROVIDER_REJECTED),
    ],
)
def test_whatsapp_answers_are_classified_by_their_code(
    reply: Answer, kind: type, code: str
) -> None:
    outcome = classify_whatsapp(reply)
    assert isinstance(outcome, kind)
    assert isinstance(outcome, Retry | Failed)
    assert outcome.code == code


def test_a_whatsapp_success_gives_the_wamid_and_a_retry_after_date_is_honoured() -> None:
    sent = classify_whatsapp(
        answer(200, {"messaging_product": "whatsapp", "contacts": [{"input": "1", "wa_id": "1"}],
                     "messages": [{"id": "wamid.ABC"}]})
    )  # fmt: skip
    assert sent == Sent("wamid.ABC", {"waId": "1"})
    when = format_datetime(datetime.fromtimestamp(1030.0, UTC), usegmt=True)
    later = classify_whatsapp(answer(429, _graph(130429), retry_after=when))
    assert isinstance(later, Retry)
    assert later.retry_after_s == 30.0


@pytest.mark.parametrize(
    ("reply", "kind", "code"),
    [
        (answer(200, {"id": 5}), Sent, None),
        (answer(204), Sent, None),
        (answer(408), Retry, ERR_PROVIDER_UNAVAILABLE),
        (answer(429, retry_after="2"), Retry, ERR_PROVIDER_UNAVAILABLE),
        (answer(502), Retry, ERR_PROVIDER_UNAVAILABLE),
        (answer(401), Failed, ERR_CHANNEL_CONFIG),
        (answer(403), Failed, ERR_CHANNEL_CONFIG),
        (answer(410), Failed, ERR_PROVIDER_REJECTED),
        (answer(302), Failed, ERR_PROVIDER_REJECTED),
        (answer(422, {"error": "bad number"}), Failed, ERR_PROVIDER_REJECTED),
    ],
)
def test_plain_http_answers_are_classified_by_status(reply: Answer, kind: type, code: str) -> None:
    outcome = classify_http(reply, "The endpoint")
    assert isinstance(outcome, kind)
    if isinstance(outcome, Retry | Failed):
        assert outcome.code == code
        assert str(reply.status) in outcome.message
    else:
        assert outcome == Sent("5" if reply.body else None)


def test_retry_after_takes_seconds_or_a_date() -> None:
    assert retry_after("120", 0) == 120.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490.0) == 0.0
    assert retry_after("soon", 0) is None
    assert retry_after(None, 0) is None


def test_transport_failures_are_retried_unless_the_address_is_refused() -> None:
    refused = httpx.ConnectError("refused")
    refused.__cause__ = RefusedAddress("refused address: 127.0.0.1 (loopback)")
    assert transport_outcome(refused) == Failed(
        ERR_CHANNEL_CONFIG, "refused address: 127.0.0.1 (loopback)"
    )
    assert isinstance(transport_outcome(httpx.ConnectError("no route")), Retry)
    timed_out = transport_outcome(httpx.ReadTimeout("slow"))
    assert isinstance(timed_out, Retry)
    assert "timeout" in timed_out.message
    assert isinstance(transport_outcome(httpx.UnsupportedProtocol("gopher")), Failed)


# -- against the local servers ----------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeMessaging]:
    async with FakeMessaging(custom_secret=new_secret()) as server:
        yield server


def twilio_client(fake: FakeMessaging, **changes: Any) -> TwilioClient:
    metadata: JsonObject = {
        "provider": "twilio",
        "accountSid": fake.twilio.sid,
        "authToken": fake.twilio.token,
        "from": "+15550000000",
        "baseUrl": fake.twilio_base_url,
        **changes,
    }
    client = sms.build(config("sms", metadata), allow_private=True)
    assert isinstance(client, TwilioClient)
    return client


def whatsapp_client(fake: FakeMessaging, **changes: Any) -> WhatsAppClient:
    metadata: JsonObject = {
        "phoneNumberId": fake.whatsapp.phone_number_id,
        "accessToken": fake.whatsapp.token,
        "baseUrl": fake.graph_base_url,
        **changes,
    }
    return whatsapp.build(config("whatsapp", metadata), allow_private=True)


def http_sms_client(fake: FakeMessaging, token: str | None = None) -> HttpSmsClient:
    headers: JsonObject = {"Authorization": f"Bearer {token or fake.sms_token}"}
    metadata: JsonObject = {"provider": "http", "url": fake.sms_url, "headers": headers}
    client = sms.build(config("sms", metadata), allow_private=True)
    assert isinstance(client, HttpSmsClient)
    return client


def custom_client(fake: FakeMessaging, **changes: Any) -> CustomClient:
    metadata: JsonObject = {
        "url": fake.custom_url("/hooks/clarion?tenant=t1"),
        "headers": {"X-Tenant": "t1"},
        "signingSecret": fake.custom_secret,
        **changes,
    }
    return custom_http.build(config("custom", metadata), allow_private=True)


async def send(client: Any, message: Outbound) -> Outcome:
    try:
        outcome: Outcome = await client.send(message)
        return outcome
    finally:
        await client.close()


@pytest.mark.integration
async def test_twilio_gets_the_form_with_basic_auth_and_answers_a_sid(fake: FakeMessaging) -> None:
    outcome = await send(twilio_client(fake), outbound())
    assert isinstance(outcome, Sent)
    assert outcome.provider_id is not None
    assert outcome.provider_id.startswith("SM")
    assert outcome.detail == {"status": "queued"}
    (seen,) = fake.accepted("twilio")
    assert seen.fields == {"To": NUMBER, "From": "+15550000000", "Body": "Your code is 1234"}
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    assert seen.headers["authorization"].startswith("Basic ")
    assert "idempotency-key" not in seen.headers  # Twilio has none: none is invented


@pytest.mark.integration
async def test_twilio_messaging_service_sid_replaces_from(fake: FakeMessaging) -> None:
    service = "MG" + "1" * 32
    outcome = await send(twilio_client(fake, **{"from": service}), outbound())
    assert isinstance(outcome, Sent)
    (seen,) = fake.accepted("twilio")
    assert seen.fields["MessagingServiceSid"] == service
    assert "From" not in seen.fields


@pytest.mark.integration
async def test_twilio_refusals_of_the_channel_are_config_errors(fake: FakeMessaging) -> None:
    wrong_token = await send(twilio_client(fake, authToken="wrong"), outbound())
    assert isinstance(wrong_token, Failed)
    assert wrong_token.code == ERR_CHANNEL_CONFIG
    assert "20003" in wrong_token.message
    foreign_sender = await send(twilio_client(fake, **{"from": "+15559999999"}), outbound())
    assert isinstance(foreign_sender, Failed)
    assert foreign_sender.code == ERR_CHANNEL_CONFIG
    assert "21606" in foreign_sender.message
    assert [r.status for r in fake.of("twilio")] == [401, 400]


@pytest.mark.integration
async def test_twilio_answers_per_recipient(fake: FakeMessaging) -> None:
    fake.plan("twilio", "+15550000011", Reply(400, 21211, "Invalid 'To' Phone Number"))
    fake.plan("twilio", "+15550000012", Reply(400, 21610, "Attempt to send to unsubscribed"))
    fake.plan("twilio", "+15550000013", Reply(429, 20429, "Too Many Requests", retry_after="3"))
    fake.plan("twilio", "+15550000014", Reply(503, 20503, "Service unavailable"))
    fake.plan("twilio", "+15550000015", Reply(delay_s=2.0))
    client = twilio_client(fake, timeoutSeconds=0.5)
    try:
        outcomes = [await client.send(outbound(f"+1555000001{i}")) for i in range(1, 6)]
    finally:
        await client.close()
    assert [(type(o).__name__, o.code) for o in outcomes if not isinstance(o, Sent)] == [
        ("Failed", "TWILIO_21211"),
        ("Failed", "TWILIO_21610"),
        ("Retry", "TWILIO_20429"),
        ("Retry", "TWILIO_20503"),
        ("Retry", ERR_PROVIDER_UNAVAILABLE),
    ]
    assert isinstance(outcomes[2], Retry)
    assert outcomes[2].retry_after_s == 3.0
    assert isinstance(outcomes[4], Retry)
    assert "timeout" in outcomes[4].message


@pytest.mark.integration
async def test_no_request_is_made_for_a_missing_or_invalid_number(fake: FakeMessaging) -> None:
    client = twilio_client(fake)
    try:
        missing = await client.send(outbound(None))
        invalid = await client.send(outbound("555-1234"))
        no_text = await client.send(outbound(content={"subject": "no text"}))
    finally:
        await client.close()
    assert isinstance(missing, Failed)
    assert missing.code == ERR_NO_CONTACT_POINT
    assert isinstance(invalid, Failed)
    assert invalid.code == ERR_INVALID_CONTACT_POINT
    assert isinstance(no_text, Failed)
    assert no_text.code == ERR_INVALID_CONTENT
    assert fake.received == []


@pytest.mark.integration
async def test_http_sms_posts_json_with_the_idempotency_key(fake: FakeMessaging) -> None:
    client = http_sms_client(fake)
    try:
        first = await client.send(outbound(key="dlv_sms_1"))
        again = await client.send(outbound(key="dlv_sms_1"))  # a redelivered job
    finally:
        await client.close()
    assert isinstance(first, Sent)
    assert first.provider_id is not None
    assert again == first  # the endpoint recognised the key
    (seen,) = fake.accepted("sms")
    assert seen.fields == {"to": NUMBER, "text": "Your code is 1234", "idempotencyKey": "dlv_sms_1"}
    assert seen.headers["idempotency-key"] == "dlv_sms_1"
    assert seen.headers["authorization"] == f"Bearer {fake.sms_token}"
    assert [r.replay for r in fake.of("sms")] == [False, True]


@pytest.mark.integration
async def test_http_sms_answers_are_classified(fake: FakeMessaging) -> None:
    fake.plan("sms", "+15550000021", Reply(503, message="down", retry_after="9"))
    fake.plan("sms", "+15550000022", Reply(400, message="blocked number"))
    client = http_sms_client(fake)
    try:
        down = await client.send(outbound("+15550000021", key="k1"))
        blocked = await client.send(outbound("+15550000022", key="k2"))
    finally:
        await client.close()
    wrong = await send(http_sms_client(fake, token="wrong"), outbound(key="k3"))
    said = 'The SMS endpoint answered 503: {"error":"down"}'
    assert down == Retry(ERR_PROVIDER_UNAVAILABLE, said, 9.0)
    assert isinstance(blocked, Failed)
    assert blocked.code == ERR_PROVIDER_REJECTED
    assert "blocked number" in blocked.message
    assert isinstance(wrong, Failed)
    assert wrong.code == ERR_CHANNEL_CONFIG


@pytest.mark.integration
async def test_whatsapp_text_goes_to_the_cloud_api_contract(fake: FakeMessaging) -> None:
    outcome = await send(whatsapp_client(fake), outbound(key="dlv_wa_1"))
    assert isinstance(outcome, Sent)
    assert outcome.provider_id is not None
    assert outcome.provider_id.startswith("wamid.")
    assert outcome.detail == {"waId": "15551230001"}
    (seen,) = fake.accepted("whatsapp")
    assert seen.fields == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "15551230001",
        "type": "text",
        "text": {"body": "Your code is 1234", "preview_url": False},
        "biz_opaque_callback_data": "dlv_wa_1",
    }
    assert seen.headers["authorization"] == f"Bearer {fake.whatsapp.token}"


@pytest.mark.integration
async def test_whatsapp_templates_are_checked_by_the_server(fake: FakeMessaging) -> None:
    def template(name: str, *parameters: str) -> JsonObject:
        return {"template": {"name": name, "language": "en_US", "parameters": list(parameters)}}

    client = whatsapp_client(fake, apiVersion="v20.0")
    try:
        sent = await client.send(outbound(content=template("order_update", "Ann", "42")))
        unknown = await client.send(outbound(content=template("no_such_template")))
        short = await client.send(outbound(content=template("order_update", "Ann")))
        broken = await client.send(outbound(content={"template": {"name": "x"}}))
    finally:
        await client.close()
    assert isinstance(sent, Sent)
    assert fake.accepted("whatsapp")[0].fields["template"]["language"] == {"code": "en_US"}
    assert isinstance(unknown, Failed)
    assert unknown.code == "WHATSAPP_132001"
    assert isinstance(short, Failed)
    assert short.code == "WHATSAPP_132000"
    assert isinstance(broken, Failed)
    assert broken.code == ERR_INVALID_CONTENT
    assert len(fake.of("whatsapp")) == 3  # the broken content never left


@pytest.mark.integration
async def test_whatsapp_errors_by_code(fake: FakeMessaging) -> None:
    fake.plan("whatsapp", "+15550000031", Reply(400, 130429, "Rate limit hit"))
    fake.plan("whatsapp", "+15550000032", Reply(400, 131026, "Message undeliverable"))
    fake.plan("whatsapp", "+15550000033", Reply(503, 131016, "Service unavailable", "4"))
    client = whatsapp_client(fake)
    try:
        throttled = await client.send(outbound("+15550000031"))
        undeliverable = await client.send(outbound("+15550000032"))
        unavailable = await client.send(outbound("+15550000033"))
    finally:
        await client.close()
    bad_token = await send(whatsapp_client(fake, accessToken="expired"), outbound())
    assert isinstance(throttled, Retry)
    assert throttled.code == "WHATSAPP_130429"
    assert isinstance(undeliverable, Failed)
    assert undeliverable.code == "WHATSAPP_131026"
    assert "undeliverable" in undeliverable.message
    assert isinstance(unavailable, Retry)
    assert (unavailable.code, unavailable.retry_after_s) == ("WHATSAPP_131016", 4.0)
    assert isinstance(bad_token, Failed)
    assert bad_token.code == ERR_CHANNEL_CONFIG
    assert "190" in bad_token.message


@pytest.mark.integration
async def test_custom_posts_are_signed_and_verified_by_the_receiver(fake: FakeMessaging) -> None:
    outcome = await send(custom_client(fake), outbound(key="dlv_c_1", content={"a": [1, "b"]}))
    assert outcome == Sent(None)
    (seen,) = fake.accepted("custom")
    assert seen.fields == {
        "notificationId": "ntf_1",
        "deliveryId": "dlv_c_1",
        "receiver": "alice",
        "channelId": "ch1",
        "content": {"a": [1, "b"]},
        "variables": {"code": "1234"},
    }
    assert seen.headers["webhook-id"] == "dlv_c_1"
    assert abs(int(seen.headers["webhook-timestamp"]) - time.time()) < 60
    assert seen.headers["x-tenant"] == "t1"
    assert seen.headers["content-type"] == "application/json"


@pytest.mark.integration
async def test_a_wrong_signature_fails_and_a_rotation_still_verifies(fake: FakeMessaging) -> None:
    forged = await send(custom_client(fake, signingSecret=new_secret()), outbound())
    assert isinstance(forged, Failed)
    assert forged.code == ERR_CHANNEL_CONFIG  # the receiver answered 401
    rotating = custom_client(
        fake,
        signingSecret=new_secret(),
        previousSigningSecret=fake.custom_secret,
        previousSecretExpiresAt=int(time.time() * 1000) + 60_000,
    )
    assert isinstance(await send(rotating, outbound()), Sent)
    assert [r.status for r in fake.of("custom")] == [401, 200]


@pytest.mark.integration
async def test_custom_answers_are_classified(fake: FakeMessaging) -> None:
    fake.plan("custom", "gone", Reply(410, message="gone"))
    fake.plan("custom", "busy", Reply(429, message="slow down", retry_after="11"))
    fake.plan("custom", "x", Reply(500, message="oops"))
    client = custom_client(fake)
    try:
        gone, busy, broken = [await client.send(outbound(uid=u)) for u in ("gone", "busy", "x")]
    finally:
        await client.close()
    assert isinstance(gone, Failed)
    assert gone.code == ERR_PROVIDER_REJECTED
    assert "410" in gone.message
    assert isinstance(busy, Retry)
    assert busy.retry_after_s == 11.0
    assert isinstance(broken, Retry)


@pytest.mark.integration
async def test_a_retry_after_date_is_honoured(fake: FakeMessaging) -> None:
    later = datetime.now(UTC) + timedelta(seconds=30)
    fake.plan("twilio", NUMBER, Reply(429, 20429, "later", format_datetime(later, usegmt=True)))
    outcome = await send(twilio_client(fake), outbound())
    assert isinstance(outcome, Retry)
    assert outcome.retry_after_s is not None
    assert 25 <= outcome.retry_after_s <= 31


@pytest.mark.integration
async def test_without_allow_private_loopback_is_refused_before_connecting(
    fake: FakeMessaging,
) -> None:
    plain_http: JsonObject = {"provider": "http", "url": fake.sms_url}
    with pytest.raises(ConfigError, match="https"):
        sms.build(config("sms", plain_http))
    settings = HttpSmsSettings.model_validate({"provider": "http", "url": fake.sms_url})
    guarded = new_client(settings, allow_private=False)
    try:
        by_name = await post(guarded, f"http://localhost:{fake.port}/sms", json={})
        by_address = await post(guarded, f"http://127.0.0.1:{fake.port}/sms", json={})
    finally:
        await guarded.aclose()
    for outcome in (by_name, by_address):
        assert isinstance(outcome, Failed)
        assert outcome.code == ERR_CHANNEL_CONFIG
        assert "loopback" in outcome.message
    assert fake.received == []


@pytest.mark.integration
async def test_concurrent_sends_share_the_channels_connections(fake: FakeMessaging) -> None:
    client = twilio_client(fake, maxConnections=4)
    try:
        for wave in range(2):
            numbers = [f"+1555100{wave}{i:03d}" for i in range(40)]
            outcomes = await asyncio.gather(*(client.send(outbound(n)) for n in numbers))
            assert all(isinstance(o, Sent) for o in outcomes)
    finally:
        await client.close()
    accepted = fake.accepted("twilio")
    assert len(accepted) == 80
    assert len({r.recipient for r in accepted}) == 80
    assert len({r.peer for r in accepted}) <= 4  # both waves over the same few connections


@pytest.mark.integration
async def test_close_releases_the_client(fake: FakeMessaging) -> None:
    client = custom_client(fake)
    assert isinstance(await client.send(outbound()), Sent)
    await client.close()
    assert client.closed
    await client.close()  # twice is fine
    with pytest.raises(RuntimeError):
        await client.send(outbound())


def test_credentials_stay_out_of_a_settings_repr() -> None:
    secret = new_secret()
    shown = " ".join(
        repr(model)
        for model in (
            TwilioSettings.model_validate(
                {"provider": "twilio", "accountSid": ACCOUNT, "authToken": "tok-1", "from": "X"}
            ),
            WhatsAppSettings.model_validate({"phoneNumberId": "1", "accessToken": "tok-2"}),
            CustomSettings.model_validate(
                {"url": "https://c.test/?key=tok-3", "signingSecret": secret,
                 "headers": {"Authorization": "Bearer tok-4"}}
            ),
        )
    )  # fmt: skip
    assert not any(s in shown for s in ("tok-1", "tok-2", "tok-3", "tok-4", secret))
