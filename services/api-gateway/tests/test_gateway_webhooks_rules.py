"""The rules of webhook endpoints (``webhooks.domain``): which URLs, triggers and Basic
Auth settings are accepted, how a change and a disable apply, what the emitter reads."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from clarion_gateway.webhooks.domain import (
    MAX_WEBHOOKS_PER_APP,
    NewWebhook,
    Webhook,
    WebhookChanges,
    changed,
    check_basic_auth,
    check_triggers,
    check_url,
    config_of,
    disabled,
    new_webhook,
    private_host,
)
from clarion_shared.contracts.config_webhooks import TRIGGERS
from clarion_shared.contracts.webhook_state import WebhookDisabled
from clarion_shared.errors import Invalid

NOW_MS = 1_800_000_000_000


def _webhook(**fields: object) -> Webhook:
    new = NewWebhook(name="Orders", url="https://hooks.example.com/in", triggers=TRIGGERS[:2])
    webhook = new_webhook("app", "wh_1", new, "whsec_old", NOW_MS, allow_private=False)
    return Webhook(**{**webhook.__dict__, **fields})


def _refused(call: Callable[[], object], field: str) -> None:
    with pytest.raises(Invalid) as caught:
        call()
    details = caught.value.details
    assert isinstance(details, list)
    assert details[0]["field"].startswith(field), details


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/in",
        "https://hooks.example.com:8443/in?x=1",
        "HTTPS://Hooks.Example.com/",
        "https://8.8.8.8/hook",
        "https://[2606:4700:4700::1111]/hook",
        "https://bücher.example/hook",
    ],
)
def test_public_https_urls_are_accepted(url: str) -> None:
    assert check_url(url, allow_private=False) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/in",  # https only
        "https://127.0.0.1/hook",
        "https://127.1/hook",  # 127.0.0.1 as resolvers read it
        "https://2130706433/hook",  # the same, as one number
        "https://0x7f.0.0.1/hook",
        "https://localhost:8080/hook",
        "https://api.localhost/hook",
        "https://10.0.0.8/hook",
        "https://172.16.3.4/hook",
        "https://192.168.1.1/hook",
        "https://100.64.0.1/hook",  # shared address space (carrier NAT)
        "https://169.254.169.254/latest/meta-data",  # cloud metadata (link-local)
        "https://metadata.google.internal/computeMetadata/v1",
        "https://0.0.0.0/hook",
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[fd00::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
        "https://224.0.0.1/hook",
        "https://240.0.0.1/hook",  # reserved
    ],
)
def test_http_and_private_hosts_are_refused_unless_allowed(url: str) -> None:
    _refused(lambda: check_url(url, allow_private=False), "webhookURL")
    assert check_url(url, allow_private=True) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "hooks.example.com/in",  # not absolute
        "/in",
        "ftp://hooks.example.com/in",
        "https:///in",  # no host
        "https://user:pass@hooks.example.com/in",  # credentials belong to useBasicAuth
        "https://user@hooks.example.com/in",
        "https://hooks.example.com:99999/in",
        "https://hooks.example.com:0/in",
        "https://[::1/in",
        "https://hooks.example.com/a b",
        " https://hooks.example.com/in",
        "https://hooks.example.com/in\n",
        "https://hooks.example.com/\tin",
        "https://" + "a" * 64 + ".example.com/in",  # a label over 63 characters
        "https://hooks.example.com/" + "a" * 2048,
    ],
)
def test_urls_that_are_not_usable_are_refused_even_when_private_is_allowed(url: str) -> None:
    _refused(lambda: check_url(url, allow_private=True), "webhookURL")


def test_a_name_is_left_to_the_emitter_to_resolve() -> None:
    assert not private_host("hooks.example.com")
    assert private_host("LOCALHOST.")
    assert private_host("127.0.0.1")


def test_triggers_are_api_md_s_each_once_in_order() -> None:
    assert check_triggers(["after_batch_completed", "after_feed_item_sent"]) == (
        "after_batch_completed",
        "after_feed_item_sent",
    )
    assert check_triggers(["after_batch_completed"] * 3) == ("after_batch_completed",)
    _refused(lambda: check_triggers([]), "triggers")
    with pytest.raises(Invalid) as caught:
        check_triggers(["after_batch_completed", "on_everything", "nope"])
    assert [d["field"] for d in caught.value.details] == ["triggers.1", "triggers.2"]


def test_basic_auth_needs_a_username_and_a_password() -> None:
    check_basic_auth(False, None, None)
    check_basic_auth(True, "ann", "pw")
    _refused(lambda: check_basic_auth(True, None, "pw"), "username")
    _refused(lambda: check_basic_auth(True, "ann", None), "password")
    _refused(lambda: check_basic_auth(False, "ann:x", None), "username")


def test_a_change_keeps_what_it_does_not_name_and_moves_the_version_on() -> None:
    current = _webhook()
    updated = changed(current, WebhookChanges(name="Renamed"), NOW_MS, False, "whsec_new", 1000)
    assert updated.name == "Renamed"
    assert (updated.url, updated.triggers, updated.signing_secret) == (
        current.url,
        current.triggers,
        "whsec_old",
    )
    # Two changes in the same millisecond still order.
    assert updated.updated_at == NOW_MS + 1
    again = changed(updated, WebhookChanges(enabled=False), NOW_MS, False, "whsec_new", 1000)
    assert again.updated_at == NOW_MS + 2
    assert not again.enabled


def test_a_rotation_keeps_the_old_secret_signing_for_the_overlap_then_forgets_it() -> None:
    rotated = changed(
        _webhook(), WebhookChanges(rotate_secret=True), NOW_MS, False, "whsec_new", 60_000
    )
    assert rotated.signing_secret == "whsec_new"
    assert rotated.previous_signing_secret == "whsec_old"
    assert rotated.previous_secret_expires_at == NOW_MS + 60_000
    config = config_of(rotated)
    assert config.secrets(NOW_MS + 59_999) == ["whsec_new", "whsec_old"]
    assert config.secrets(NOW_MS + 60_000) == ["whsec_new"]
    later = changed(rotated, WebhookChanges(name="x"), NOW_MS + 60_000, False, "unused", 60_000)
    assert (later.previous_signing_secret, later.previous_secret_expires_at) == (None, None)


def test_a_change_checks_basic_auth_against_what_is_stored() -> None:
    with_auth = _webhook(use_basic_auth=True, username="ann", password="pw")
    kept = changed(with_auth, WebhookChanges(username="bob"), NOW_MS, False, "s", 0)
    assert (kept.username, kept.password) == ("bob", "pw")
    with pytest.raises(Invalid):
        changed(_webhook(), WebhookChanges(use_basic_auth=True), NOW_MS, False, "s", 0)


def _disable(config_updated_at: int) -> WebhookDisabled:
    return WebhookDisabled(
        event_id="e1",
        app_id="app",
        webhook_id="wh_1",
        reason="gone",
        detail="answered 410",
        disabled_at=NOW_MS // 1000,
        config_updated_at=config_updated_at,
    )


def test_a_disable_applies_to_the_configuration_it_was_decided_for() -> None:
    current = _webhook()
    off = disabled(current, _disable(current.updated_at), NOW_MS + 5)
    assert off is not None
    assert not off.enabled
    assert off.disabled_reason == "gone: answered 410"
    assert off.updated_at == NOW_MS + 5
    assert disabled(off, _disable(current.updated_at), NOW_MS + 6) is None  # redelivered
    # The operator changed it since: the emitter judged an older configuration.
    assert disabled(current, _disable(current.updated_at - 1), NOW_MS + 5) is None


def test_enabling_again_clears_why_it_was_disabled() -> None:
    current = _webhook(enabled=False, disabled_reason="failing: 5 days")
    renamed = changed(current, WebhookChanges(name="x"), NOW_MS, False, "s", 0)
    assert renamed.disabled_reason == "failing: 5 days"
    enabled = changed(current, WebhookChanges(enabled=True), NOW_MS, False, "s", 0)
    assert enabled.enabled
    assert enabled.disabled_reason is None


def test_the_emitter_reads_the_whole_configuration() -> None:
    webhook = _webhook(use_basic_auth=True, username="ann", password="pw")
    config = config_of(webhook)
    assert config.key == "app:wh_1"
    assert (config.url, config.signing_secret, config.password) == (
        webhook.url,
        "whsec_old",
        "pw",
    )
    assert config.updated_at == NOW_MS
    assert config.triggers == list(TRIGGERS[:2])
    assert MAX_WEBHOOKS_PER_APP == 25
