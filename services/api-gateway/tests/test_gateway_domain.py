"""Pure rules: slugs, masking, template validation and versions, receivers, chunks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from clarion_gateway import paging, slugs
from clarion_gateway.apps import domain as app_domain
from clarion_gateway.channels import domain as channel_domain
from clarion_gateway.errors import ERRORS
from clarion_gateway.idempotency import domain as idempotency_domain
from clarion_gateway.sends import domain as send_domain
from clarion_gateway.templates import content as template_content
from clarion_gateway.templates import domain as template_domain
from clarion_gateway.templates import versions
from clarion_gateway.templates.domain import ChannelInput, VariableInput
from clarion_shared.contracts.base import JsonObject
from clarion_shared.errors import ApiError, DomainError


def api(error: BaseException) -> ApiError:
    """How the client sees a domain error (the service's mapping)."""
    assert isinstance(error, Exception)
    mapped = ERRORS.api_error(error)
    assert mapped is not None
    return mapped


# ---------------------------------------------------------------- slugs and ids


@pytest.mark.parametrize(
    ("name", "sep", "slug"),
    [
        ("My Push Channel", "-", "my-push-channel"),
        ("  Order   update! ", "_", "order_update"),
        ("Café crème", "-", "cafe-creme"),
        ("日本語", "-", ""),
        ("a" * 80, "-", "a" * 64),
    ],
)
def test_slugify(name: str, sep: str, slug: str) -> None:
    assert slugs.slugify(name, sep=sep) == slug


def test_check_slug_refuses_spaces_and_leading_dash() -> None:
    assert slugs.check_slug("order_update-2", "templateId") == "order_update-2"
    for bad in ("has space", "-lead", "", "a/b", "x" * 101):
        with pytest.raises(DomainError) as err:
            slugs.check_slug(bad, "templateId")
        assert api(err.value).code == "ERR_VALIDATION"


def test_keys_are_hashed_and_generated_with_prefix() -> None:
    key = app_domain.new_api_key()
    assert key.startswith("ck_")
    assert len(key) > 40
    assert app_domain.hash_key(key) == app_domain.hash_key(key)
    assert app_domain.hash_key(key) != key
    with pytest.raises(DomainError):
        app_domain.check_api_key("short")
    with pytest.raises(DomainError):
        app_domain.check_app_id("bad id")


# ---------------------------------------------------------------- channels


@pytest.mark.parametrize(
    "key",
    ["password", "smtpPassword", "apiKey", "api_key", "authToken", "token", "clientSecret",
     "serverKey", "privateKey", "credentials", "auth"],
)  # fmt: skip
def test_sensitive_keys(key: str) -> None:
    assert channel_domain.is_sensitive(key)


@pytest.mark.parametrize("key", ["host", "port", "senderId", "from", "url", "enabled"])
def test_plain_keys(key: str) -> None:
    assert not channel_domain.is_sensitive(key)


def test_mask_metadata_masks_credentials_at_any_depth() -> None:
    metadata: JsonObject = {
        "host": "smtp.example.com",
        "port": 587,
        "password": "correct-horse-battery",
        "pin": 1234,
        "smtp": {"authToken": "short", "user": "me"},
        "credentials": {"clientId": "abcdefghijklmnop", "pin": 42, "useTls": True},
    }
    masked = channel_domain.mask_metadata(metadata)
    assert masked == {
        "host": "smtp.example.com",
        "port": 587,
        "password": "****tery",
        "pin": 1234,
        "smtp": {"authToken": "****", "user": "me"},
        "credentials": {"clientId": "****mnop", "pin": "****", "useTls": True},
    }
    assert metadata["password"] == "correct-horse-battery"  # the input is untouched


def test_masked_secret_sent_back_keeps_the_stored_value() -> None:
    old: JsonObject = {"password": "correct-horse-battery", "smtp": {"token": "t0k3n-secret-xyz"}}
    new: JsonObject = {"password": "****tery", "smtp": {"token": "****"}, "host": "h"}
    assert channel_domain.keep_masked_secrets(new, old) == {
        "password": "correct-horse-battery",
        "smtp": {"token": "t0k3n-secret-xyz"},
        "host": "h",
    }
    assert channel_domain.keep_masked_secrets({"password": "new-one"}, old) == {
        "password": "new-one"
    }


def test_masked_service_account_sent_back_keeps_every_stored_value() -> None:
    # A push channel's service account is masked whole, its client_email too: each of
    # its values sent back masked keeps the stored one.
    old: JsonObject = {
        "fcm": {
            "projectId": "p1",
            "serviceAccount": {"client_email": "a@p1.iam.example.com", "private_key": "PEM"},
        }
    }
    masked = channel_domain.mask_metadata(old)
    fcm = masked["fcm"]
    assert isinstance(fcm, dict)
    assert fcm["serviceAccount"] == {"client_email": "****.com", "private_key": "****"}
    assert channel_domain.keep_masked_secrets(masked, old) == old


def test_channel_types() -> None:
    assert channel_domain.channel_type_of("email") == "email"
    assert channel_domain.channel_type_of("whatsapp") == "whatsapp"
    with pytest.raises(DomainError) as err:
        channel_domain.channel_type_of("pigeon")
    assert (api(err.value).status, api(err.value).code) == (400, "ERR_VALIDATION")


# ---------------------------------------------------------------- templates


def test_content_requirements_per_channel_type() -> None:
    assert template_content.content_problems("in_app", {"title": "t", "body": "b"}) == []
    assert [p["field"] for p in template_content.content_problems("push", {"title": "t"})] == [
        "body"
    ]
    assert template_content.content_problems("email", {"subject": "s", "html": "<p>h</p>"}) == []
    assert [p["field"] for p in template_content.content_problems("email", {"subject": "s"})] == [
        "text/html"
    ]
    assert [p["field"] for p in template_content.content_problems("sms", {"text": ""})] == ["text"]
    assert template_content.content_problems("custom", {}) == []


@pytest.mark.parametrize(
    ("content", "fields"),
    [
        ({"text": "Hi {{name}}"}, []),
        ({"text": "Hi", "previewUrl": True}, []),
        ({"template": {"name": "order_update", "language": "en_US"}}, []),
        (
            {"template": {"name": "order", "language": "{{lang}}", "parameters": ["{{n}}", "2"]}},
            [],
        ),
        ({}, ["text/template"]),
        ({"text": "Hi", "template": {"name": "t", "language": "en"}}, ["text/template"]),
        ({"text": ""}, ["text"]),
        ({"template": {"language": "en"}}, ["template.name"]),
        ({"template": {"name": "t", "language": "English"}}, ["template.language"]),
        (
            {"template": {"name": "t", "language": "en", "parameters": [1]}},
            ["template.parameters.0"],
        ),
        ({"template": "order_update"}, ["template"]),
    ],
)
def test_whatsapp_content_is_text_or_an_approved_template(
    content: JsonObject, fields: list[str]
) -> None:
    problems = template_content.content_problems("whatsapp", content)
    assert [p["field"] for p in problems] == fields
    assert all(p["channelType"] == "whatsapp" for p in problems)


def test_validate_channels_applies_defaults_and_refuses_duplicates() -> None:
    channels = template_domain.validate_channels(
        [ChannelInput("in_app"), ChannelInput("sms", content={"text": "x"})], "Welcome", "Hello"
    )
    assert channels[0].content == {"title": "Welcome", "body": "Hello"}
    with pytest.raises(DomainError) as err:
        template_domain.validate_channels(
            [ChannelInput("sms", content={"text": "a"}), ChannelInput("sms")], "n", None
        )
    assert (api(err.value).status, api(err.value).code) == (409, "ERR_CONFLICT")
    with pytest.raises(DomainError) as err:
        template_domain.validate_channels([], "n", None)
    assert api(err.value).code == "ERR_VALIDATION"
    with pytest.raises(DomainError) as err:
        template_domain.validate_channels(
            [ChannelInput("email", content={"subject": "s"})], "n", None
        )
    assert err.value.details[0]["channelType"] == "email"


def test_validate_schema() -> None:
    schema = template_domain.validate_schema(
        [
            VariableInput("name", default_value="friend"),
            VariableInput("count", default_value=3),
            VariableInput("hero", type="image", required=True),
            VariableInput("cta", type="action"),
        ]
    )
    assert [v.key for v in schema] == ["name", "count", "hero", "cta"]
    assert schema[1].default_value == "3"
    for bad in (
        [VariableInput("1st")],
        [VariableInput("a-b")],
        [VariableInput("x"), VariableInput("x")],
        [VariableInput("x", type="number")],
        [VariableInput("img", type="image", default_value="http://x")],
        [VariableInput("x", default_value={"a": 1})],
    ):
        with pytest.raises(DomainError) as err:
            template_domain.validate_schema(bad)
        assert api(err.value).code == "ERR_VALIDATION"


def test_unknown_tokens_are_named() -> None:
    channels = template_domain.validate_channels(
        [ChannelInput("in_app", content={"title": "{{ name }}", "body": "{{a}} {{b}} {{a}}"})],
        "n",
        None,
    )
    schema = template_domain.validate_schema([VariableInput("name")])
    with pytest.raises(DomainError) as err:
        template_domain.check_tokens(channels, schema)
    assert err.value.details == {"unknownVariables": ["a", "b"]}
    assert "a, b" in err.value.message


def _template(status: template_domain.VersionStatus = "draft") -> template_domain.Template:
    channels = template_domain.validate_channels(
        [ChannelInput("in_app", content={"title": "t", "body": "b"})], "n", None
    )
    version = versions.new_version(1, channels, (), now=100, status=status)
    return template_domain.Template("app", "tpl", "n", (version,), created_at=100, updated_at=100)


def test_approving_then_editing_creates_a_draft_version() -> None:
    template = _template()
    assert (template.status, template.approved_version) == ("draft", None)
    approved = versions.set_status(template, "approved", now=200)
    assert (approved.status, approved.approved_version) == ("approved", 1)
    new_channels = versions.with_channel_content(
        approved.newest.channels,
        template_domain.TemplateChannel("in_app", None, {"title": "T", "body": "B"}),
    )
    edited = versions.edit_content(approved, now=300, channels=new_channels)
    assert [v.version for v in edited.versions] == [1, 2]
    assert (edited.status, edited.approved_version) == ("draft", 1)
    assert edited.versions[0] == approved.versions[0]  # the approved version is untouched
    # A draft newest version is edited in place.
    again = versions.edit_content(edited, now=400, channels=approved.newest.channels)
    assert [v.version for v in again.versions] == [1, 2]
    assert again.newest.channels == approved.newest.channels


def test_status_transitions() -> None:
    approved = versions.set_status(_template(), "approved", now=200)
    with pytest.raises(DomainError) as err:
        versions.set_status(approved, "draft", now=300)
    assert api(err.value).code == "ERR_CONFLICT"
    archived = versions.set_status(approved, "archived", now=300)
    assert archived.status == "archived"
    assert archived.approved_version == 1
    assert versions.set_status(archived, "draft", now=400).status == "approved"
    assert versions.set_status(archived, "approved", now=400).archived is False


def test_add_version_copies_the_newest() -> None:
    template = versions.add_version(_template(), now=200)
    assert [v.version for v in template.versions] == [1, 2]
    assert template.versions[1].channels == template.versions[0].channels
    assert template.versions[1].status == "draft"


def test_with_channel_content_replaces_or_adds() -> None:
    base = _template().newest.channels
    added = versions.with_channel_content(
        base, template_domain.TemplateChannel("sms", "s1", {"text": "x"})
    )
    assert [c.channel_type for c in added] == ["in_app", "sms"]
    kept_id = versions.with_channel_content(
        (replace(base[0], channel_id="feed"),),
        template_domain.TemplateChannel("in_app", None, {"title": "a", "body": "b"}),
    )
    assert kept_id[0].channel_id == "feed"


# ---------------------------------------------------------------- sends

LIMITS = send_domain.SendLimits(realtime_max=10, batch_max=25, chunk_size=10)


def test_receivers_are_deduplicated_in_order() -> None:
    assert send_domain.normalize_receivers(["b", "a", "b", "c", "a"], LIMITS) == ("b", "a", "c")


def test_bad_receivers_are_reported_by_index() -> None:
    with pytest.raises(DomainError) as err:
        send_domain.normalize_receivers(["ok", "not ok", "", "x" * 101], LIMITS)
    assert api(err.value).code == "ERR_VALIDATION"
    assert [b["index"] for b in err.value.details["invalidReceivers"]] == [1, 2, 3]


def test_receiver_limits() -> None:
    with pytest.raises(DomainError) as err:
        send_domain.normalize_receivers([], LIMITS)
    assert api(err.value).code == "ERR_VALIDATION"
    with pytest.raises(DomainError) as err:
        send_domain.normalize_receivers([f"u{i}" for i in range(26)], LIMITS)
    assert api(err.value).code == "ERR_TARGET_LIMIT_EXCEEDED"
    # Duplicates do not count against the limit.
    assert len(send_domain.normalize_receivers([f"u{i % 25}" for i in range(60)], LIMITS)) == 25


def test_send_mode_and_chunks() -> None:
    assert send_domain.send_mode(10, LIMITS) == "realtime"
    assert send_domain.send_mode(11, LIMITS) == "batch"
    parts = send_domain.chunked(list(range(25)), 10)
    assert [len(p) for p in parts] == [10, 10, 5]
    assert [x for p in parts for x in p] == list(range(25))
    assert send_domain.chunked([], 10) == []


def test_used_channels_narrow_in_template_order() -> None:
    channels = template_domain.validate_channels(
        [
            ChannelInput("in_app", content={"title": "t", "body": "b"}),
            ChannelInput("sms", content={"text": "t"}),
        ],
        "n",
        None,
    )
    version = versions.new_version(1, channels, (), now=1)
    assert [c.channel_type for c in send_domain.used_channels(version, None)] == ["in_app", "sms"]
    assert [c.channel_type for c in send_domain.used_channels(version, ["sms"])] == ["sms"]
    with pytest.raises(DomainError):
        send_domain.used_channels(version, ["email"])
    with pytest.raises(DomainError):
        send_domain.used_channels(version, [])


def _channel(channel_id: str, enabled: bool, created_at: int) -> channel_domain.Channel:
    return channel_domain.Channel(
        "app", channel_id, channel_id, "in_app", enabled, {}, created_at, 0
    )


def test_pick_channel() -> None:
    by_type = template_domain.TemplateChannel("in_app", None, {})
    candidates = [_channel("b", True, 2), _channel("a", False, 1), _channel("c", True, 1)]
    picked = send_domain.pick_channel(by_type, candidates)
    assert picked is not None
    assert picked.channel_id == "c"
    named = template_domain.TemplateChannel("in_app", "b", {})
    picked = send_domain.pick_channel(named, candidates)
    assert picked is not None
    assert picked.channel_id == "b"
    assert (
        send_domain.pick_channel(template_domain.TemplateChannel("in_app", "a", {}), candidates)
        is None
    )
    assert send_domain.pick_channel(by_type, [_channel("a", False, 1)]) is None


def test_fingerprint_ignores_key_order_and_whitespace() -> None:
    one = idempotency_domain.fingerprint("POST", "/x", b'{"a": 1, "b": [1, 2]}')
    two = idempotency_domain.fingerprint("POST", "/x", b'{"b":[1,2],"a":1}')
    assert one == two
    assert one != idempotency_domain.fingerprint("POST", "/y", b'{"a":1,"b":[1,2]}')
    assert one != idempotency_domain.fingerprint("POST", "/x", b'{"a":2,"b":[1,2]}')


def test_pages() -> None:
    page = paging.Page(2, 3)
    assert page.slice(list(range(8))) == [3, 4, 5]
    assert paging.Page(3, 3).slice(list(range(8))) == [6, 7]
    assert paging.matches_tags(["a", "b"], ["a", "c"], "any")
    assert not paging.matches_tags(["a", "b"], ["a", "c"], "all")
    assert paging.split_csv(" a, b ,,c ") == ["a", "b", "c"]
