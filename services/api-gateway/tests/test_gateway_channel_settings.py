"""Channels' provider settings over HTTP (API.md Channels; issue 11): an enabled channel's
``metadata`` parses with its type's model or is 400 naming each key, a disabled one may
be incomplete but not malformed, provider URLs follow ``CLARION_WEBHOOKS_ALLOW_PRIVATE``,
credentials are masked on every read, ``whatsapp`` is a channel type like the others,
and a custom channel's signing secret is shown once and published to the dispatcher."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clarion_gateway.channels.domain import mask_value
from clarion_gateway.testing import AUTH, Harness, gateway_harness, make_settings
from clarion_gateway.testing.channels import APNS, SERVICE_ACCOUNT, provider_settings
from clarion_shared.channel_settings.custom import CustomSettings
from clarion_shared.contracts.config_channels import ChannelConfig

CHANNELS = "/v3/campaigns/channels"
TEMPLATES = "/v3/campaigns/templates"
PROVIDER_TYPES = ("email", "push", "sms", "whatsapp", "custom")


async def create(harness: Harness, **body: Any) -> Any:
    """The raw answer of a create (``harness.create_channel`` asserts a 201)."""
    body.setdefault("name", f"{body['type']} channel")
    return await harness.client.post(CHANNELS, json=body, headers=AUTH)


def refused_fields(response: Any) -> list[str]:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "ERR_VALIDATION"
    return [detail["field"] for detail in error["details"]]


def last_config(harness: Harness) -> ChannelConfig:
    return harness.commands.configs[-1]


# ---------------------------------------------------------------- required keys


@pytest.mark.parametrize("channel_type", PROVIDER_TYPES)
async def test_complete_settings_make_an_enabled_channel(
    harness: Harness, channel_type: str
) -> None:
    created = await harness.create_channel(type=channel_type, name=channel_type)
    assert (created["type"], created["enabled"]) == (channel_type, True)
    assert last_config(harness).channel_type == channel_type


@pytest.mark.parametrize(
    ("channel_type", "metadata", "fields"),
    [
        ("email", {}, ["metadata.smtp", "metadata.from"]),
        (
            "email",
            {"smtp": {"host": "smtp.example.com"}, "from": {}},
            ["metadata.smtp.port", "metadata.smtp.security", "metadata.from.email"],
        ),
        ("push", {}, ["metadata"]),  # fcm or apns, one at least
        ("push", {"fcm": {"projectId": "p1"}}, ["metadata.fcm.serviceAccount"]),
        (
            "push",
            {"apns": {"teamId": "TEAM123456"}},
            ["metadata.apns.keyId", "metadata.apns.privateKey", "metadata.apns.bundleId"],
        ),
        ("sms", {}, ["metadata.provider"]),
        ("sms", {"provider": "nexmo"}, ["metadata.provider"]),
        (
            "sms",
            {"provider": "twilio"},
            ["metadata.accountSid", "metadata.authToken", "metadata.from"],
        ),
        ("sms", {"provider": "http"}, ["metadata.url"]),
        ("whatsapp", {}, ["metadata.phoneNumberId", "metadata.accessToken"]),
        ("custom", {"headers": {"X-Team": "a"}}, ["metadata.url"]),
    ],
)
async def test_an_enabled_channel_missing_a_key_is_400_naming_it(
    harness: Harness, channel_type: str, metadata: dict[str, Any], fields: list[str]
) -> None:
    response = await create(harness, type=channel_type, enabled=True, metadata=metadata)
    assert refused_fields(response) == fields
    assert harness.commands.configs == []  # nothing saved, nothing published


async def test_malformed_values_are_named_and_never_echoed(harness: Harness) -> None:
    metadata = {
        **provider_settings("sms"),
        "authToken": "s3cret-token-value",
        "from": "not a number!",
        "baseUrl": "ftp://api.example.com",
        "rateLimitPerSecond": 0,
    }
    response = await create(harness, type="sms", enabled=True, metadata=metadata)
    assert refused_fields(response) == [
        "metadata.rateLimitPerSecond",
        "metadata.from",
        "metadata.baseUrl",
    ]
    assert "s3cret-token-value" not in response.text


async def test_keys_the_settings_do_not_know_are_stored_and_ignored(harness: Harness) -> None:
    metadata = {**provider_settings("whatsapp"), "accessToken": "x", "team": {"owner": "ops"}}
    created = await harness.create_channel(type="whatsapp", metadata=metadata)
    assert created["metadata"]["team"] == {"owner": "ops"}
    assert last_config(harness).metadata["team"] == {"owner": "ops"}


async def test_in_app_has_no_settings(harness: Harness) -> None:
    created = await harness.create_channel(metadata={"anything": [1, "two"]})
    assert created["metadata"] == {"anything": [1, "two"]}


# ---------------------------------------------------------------- disabled channels


async def test_a_disabled_channel_is_saved_incomplete_and_checked_whole_when_enabled(
    harness: Harness,
) -> None:
    draft = {"smtp": {"host": "smtp.example.com", "port": 587}}
    created = await harness.create_channel(type="email", enabled=False, metadata=draft)
    assert created["metadata"] == draft
    assert (last_config(harness).enabled, last_config(harness).metadata) == (False, draft)
    published = len(harness.commands.configs)

    url = f"{CHANNELS}/{created['channelId']}"
    enabling = await harness.client.put(url, json={"enabled": True}, headers=AUTH)
    assert refused_fields(enabling) == ["metadata.smtp.security", "metadata.from"]
    got = await harness.client.get(url, headers=AUTH)
    assert got.json()["data"]["enabled"] is False
    assert len(harness.commands.configs) == published

    complete = {"smtp": {**draft["smtp"], "security": "starttls"}, "from": {"email": "a@b.co"}}
    enabled = await harness.client.put(
        url, json={"enabled": True, "metadata": complete}, headers=AUTH
    )
    assert enabled.status_code == 200, enabled.text
    assert (last_config(harness).enabled, last_config(harness).metadata) == (True, complete)

    # Enabled, it stays whole: an update that drops a key is refused.
    dropping = await harness.client.put(
        url, json={"metadata": {"smtp": complete["smtp"]}}, headers=AUTH
    )
    assert refused_fields(dropping) == ["metadata.from"]


@pytest.mark.parametrize("channel_type", PROVIDER_TYPES)
async def test_a_disabled_channel_may_carry_nothing(harness: Harness, channel_type: str) -> None:
    response = await create(harness, type=channel_type, enabled=False, metadata={})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("channel_type", "metadata", "fields"),
    [
        ("email", {"smtp": {"port": "submission"}}, ["metadata.smtp.port"]),
        ("email", {"from": {"email": "nobody"}}, ["metadata.from.email"]),
        ("sms", {"provider": "nexmo"}, ["metadata.provider"]),
        ("push", {"apns": {"teamId": "team"}}, ["metadata.apns.teamId"]),
        ("whatsapp", {"phoneNumberId": "+1 555"}, ["metadata.phoneNumberId"]),
        ("custom", {"headers": {"Host": "x"}}, ["metadata.headers"]),
    ],
)
async def test_what_a_disabled_channel_carries_must_be_well_formed(
    harness: Harness, channel_type: str, metadata: dict[str, Any], fields: list[str]
) -> None:
    response = await create(harness, type=channel_type, enabled=False, metadata=metadata)
    assert refused_fields(response) == fields


# ---------------------------------------------------------------- private addresses

PRIVATE_URLS = [
    ("custom", {"url": "https://127.0.0.1:9000/hook"}, "metadata.url"),
    ("custom", {"url": "http://hooks.example.com/hook"}, "metadata.url"),  # not https
    ("sms", {"provider": "http", "url": "https://10.0.0.5/sms"}, "metadata.url"),
    (
        "sms",
        {**provider_settings("sms"), "baseUrl": "https://localhost:8443"},
        "metadata.baseUrl",
    ),
    (
        "whatsapp",
        {**provider_settings("whatsapp"), "baseUrl": "https://169.254.169.254"},
        "metadata.baseUrl",
    ),
    (
        "push",
        {"fcm": {"projectId": "p1", "serviceAccount": SERVICE_ACCOUNT, "baseUrl": "https://[::1]"}},
        "metadata.fcm.baseUrl",
    ),
    (
        "push",
        {
            "fcm": {
                "projectId": "p1",
                "serviceAccount": SERVICE_ACCOUNT,
                "tokenUrl": "https://192.168.1.10/token",
            }
        },
        "metadata.fcm.tokenUrl",
    ),
    (
        "push",
        {
            "fcm": {
                "projectId": "p1",
                # The key file as a string, as Google hands it out.
                "serviceAccount": json.dumps(
                    {**SERVICE_ACCOUNT, "token_uri": "https://127.0.0.1/token"}
                ),
            }
        },
        "metadata.fcm.serviceAccount.token_uri",
    ),
    (
        "push",
        {"apns": {**APNS, "baseUrl": "https://172.16.0.1"}},
        "metadata.apns.baseUrl",
    ),
]


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize(("channel_type", "metadata", "field"), PRIVATE_URLS)
async def test_private_provider_urls_are_refused(
    harness: Harness, channel_type: str, metadata: dict[str, Any], field: str, enabled: bool
) -> None:
    response = await create(harness, type=channel_type, enabled=enabled, metadata=metadata)
    assert refused_fields(response) == [field]


@pytest.mark.parametrize(("channel_type", "metadata", "field"), PRIVATE_URLS)
async def test_private_provider_urls_are_accepted_when_allowed(
    channel_type: str, metadata: dict[str, Any], field: str
) -> None:
    async with gateway_harness(make_settings(webhooks_allow_private=True)) as harness:
        response = await create(harness, type=channel_type, enabled=True, metadata=metadata)
        assert response.status_code == 201, (field, response.text)


async def test_a_private_url_is_refused_on_update_too(harness: Harness) -> None:
    created = await harness.create_channel(type="custom")
    response = await harness.client.put(
        f"{CHANNELS}/{created['channelId']}",
        json={"metadata": {"url": "https://localhost/hook"}},
        headers=AUTH,
    )
    assert refused_fields(response) == ["metadata.url"]


# ---------------------------------------------------------------- credentials masked

SECRETS = [
    ("email", ("smtp", "password"), provider_settings("email")),
    ("sms", ("authToken",), provider_settings("sms")),
    (
        "sms",
        ("headers", "Authorization"),
        {
            "provider": "http",
            "url": "https://sms.example.com/send",
            "headers": {"Authorization": "Bearer http-sms-token-123"},
        },
    ),
    ("whatsapp", ("accessToken",), provider_settings("whatsapp")),
    ("push", ("apns", "privateKey"), provider_settings("push")),
    ("push", ("fcm", "serviceAccount", "private_key"), provider_settings("push")),
    ("push", ("fcm", "serviceAccount", "client_email"), provider_settings("push")),
    (
        "push",
        ("fcm", "serviceAccount"),
        {"fcm": {"projectId": "p1", "serviceAccount": json.dumps(SERVICE_ACCOUNT)}},
    ),
]


def _at(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


@pytest.mark.parametrize(("channel_type", "path", "metadata"), SECRETS)
async def test_every_credential_is_masked_on_read_and_kept_when_sent_back(
    harness: Harness, channel_type: str, path: tuple[str, ...], metadata: dict[str, Any]
) -> None:
    secret = _at(metadata, path)
    created = await harness.create_channel(type=channel_type, metadata=metadata)
    url = f"{CHANNELS}/{created['channelId']}"
    got = (await harness.client.get(url, headers=AUTH)).json()["data"]
    listed = (await harness.client.get(CHANNELS, headers=AUTH)).json()["data"]
    (in_list,) = [c for c in listed if c["channelId"] == created["channelId"]]
    for read in (created, got, in_list):
        assert _at(read["metadata"], path) == mask_value(secret)
        text = json.dumps(read)
        assert secret not in text
        assert "MIGHAgEAMBMG" not in text  # nor the PEM key's body
    assert _at(last_config(harness).metadata, path) == secret  # internal: in full

    # Read, renamed and sent back whole: every credential keeps its stored value.
    sent_back = await harness.client.put(
        url, json={"name": "Renamed", "metadata": got["metadata"]}, headers=AUTH
    )
    assert sent_back.status_code == 200, sent_back.text
    assert last_config(harness).metadata == metadata


# ---------------------------------------------------------------- custom: signing secret


async def test_a_custom_channel_s_signing_secret_is_shown_once_and_published(
    harness: Harness,
) -> None:
    metadata = {**provider_settings("custom"), "signingSecret": "whsec_bWluZQ=="}
    created = await harness.create_channel(type="custom", name="Hooks", metadata=metadata)
    secret = created["signingSecret"]
    assert secret.startswith("whsec_")
    assert secret != "whsec_bWluZQ=="  # Clarion's own, not the client's
    assert created["metadata"]["signingSecret"] == mask_value(secret)

    config = last_config(harness)
    assert config.metadata["signingSecret"] == secret
    settings = CustomSettings.model_validate(config.metadata)
    assert settings.secrets(now_ms=0) == [secret]  # what the dispatcher signs with

    url = f"{CHANNELS}/{created['channelId']}"
    got = (await harness.client.get(url, headers=AUTH)).json()["data"]
    assert "signingSecret" not in got
    assert got["metadata"]["signingSecret"] == mask_value(secret)
    assert secret not in (await harness.client.get(CHANNELS, headers=AUTH)).text

    # An update cannot drop or replace it, and does not show it.
    for sent in ({"url": "https://hooks.example.com/v2"}, {"signingSecret": "whsec_eA=="}):
        body = {"metadata": {**provider_settings("custom"), **sent}}
        updated = await harness.client.put(url, json=body, headers=AUTH)
        assert updated.status_code == 200, updated.text
        assert "signingSecret" not in updated.json()["data"]
        assert last_config(harness).metadata["signingSecret"] == secret


async def test_every_custom_channel_gets_a_secret_of_its_own(harness: Harness) -> None:
    first = await harness.create_channel(type="custom", name="One")
    second = await harness.create_channel(type="custom", name="Two", enabled=False, metadata={})
    assert first["signingSecret"] != second["signingSecret"]
    assert second["signingSecret"].startswith("whsec_")


async def test_other_types_answer_no_signing_secret(harness: Harness) -> None:
    created = await harness.create_channel(type="whatsapp")
    assert "signingSecret" not in created
    spec = (await harness.client.get("/openapi.json")).json()
    schema = spec["components"]["schemas"]["ChannelCreated"]
    assert "signingSecret" in schema["properties"]
    assert "signingSecret" not in schema.get("required", [])


# ---------------------------------------------------------------- whatsapp templates


async def test_whatsapp_templates_take_text_or_an_approved_template(harness: Harness) -> None:
    channels = [
        {
            "channelType": "whatsapp",
            "content": {
                "template": {
                    "name": "order_update",
                    "language": "en_US",
                    "parameters": ["{{name}}", "{{order}}"],
                }
            },
        }
    ]
    schema = [{"key": "name", "type": "string"}, {"key": "order", "type": "string"}]
    made = await harness.create_template(
        name="Order", templateId="order", channels=channels, variableSchema=schema
    )
    assert made["channels"][0]["channelType"] == "whatsapp"

    url = f"{TEMPLATES}/order/channels/whatsapp"
    text = await harness.client.put(url, json={"content": {"text": "Hi {{name}}"}}, headers=AUTH)
    assert text.status_code == 200, text.text
    both = await harness.client.put(
        url,
        json={"content": {"text": "Hi", "template": {"name": "t", "language": "en"}}},
        headers=AUTH,
    )
    assert refused_fields(both) == ["text/template"]
    bad_language = await harness.client.put(
        url, json={"content": {"template": {"name": "t", "language": "English"}}}, headers=AUTH
    )
    assert refused_fields(bad_language) == ["template.language"]


async def test_a_whatsapp_channel_without_content_gets_text(harness: Harness) -> None:
    made = await harness.create_template(
        name="Ping", channels=[{"channelType": "whatsapp"}], variableSchema=[]
    )
    assert made["channels"][0]["content"] == {"text": "Ping"}
    refused = await harness.client.post(
        TEMPLATES,
        json={"name": "Empty", "channels": [{"channelType": "whatsapp", "content": {}}]},
        headers=AUTH,
    )
    assert refused_fields(refused) == ["text/template"]


async def test_keys_are_checked_for_their_shape(harness: Harness) -> None:
    apns = {**APNS, "privateKey": "not a key"}
    response = await create(harness, type="push", enabled=True, metadata={"apns": apns})
    assert refused_fields(response) == ["metadata.apns.privateKey"]
