"""Composition: settings from the environment, what ``build`` wires (nothing started)."""

from __future__ import annotations

import pytest

from clarion_dispatcher.app import Settings, build
from clarion_shared.topics import Topics


def test_settings_defaults_and_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert (defaults.port, defaults.group_id, defaults.directory_timeout_s) == (
        8081,
        "dispatcher",
        60.0,
    )
    assert defaults.reply_fetch_max_wait_ms == 500  # tails: idle polling only (shared.tail)
    assert defaults.db_name == "clarion_dispatcher"
    assert (defaults.user_cache_size, defaults.user_cache_ttl_s) == (100_000, 60.0)

    monkeypatch.setenv("CLARION_DISPATCHER_GROUP_ID", "dispatcher-blue")
    monkeypatch.setenv("CLARION_DISPATCHER_DIRECTORY_TIMEOUT_S", "2.5")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "10.0.0.1:9092")
    configured = Settings()
    assert configured.group_id == "dispatcher-blue"
    assert configured.directory_timeout_s == 2.5
    assert configured.kafka_bootstrap_servers == "10.0.0.1:9092"


def test_build_wires_routes_and_readiness_checks() -> None:
    app = build(Settings())
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    feed = "/internal/apps/{app_id}/feed/{uid}"
    assert {
        ("GET", feed),
        ("GET", f"{feed}/unread-count"),
        ("POST", f"{feed}/{{item_id}}/read"),
        ("POST", f"{feed}/{{item_id}}/delivered"),
        ("DELETE", f"{feed}/{{item_id}}"),
        ("GET", "/internal/apps/{app_id}/notifications/{notification_id}"),
        ("PUT", "/internal/apps/{app_id}/batches/{batch_id}"),
        ("GET", "/internal/apps/{app_id}/batches/{batch_id}"),
        ("GET", "/internal/apps/{app_id}/batches/{batch_id}/receivers"),
    } <= routes
    assert set(app.state.readiness) == {
        "mongo",
        "kafka",
        "directory_replies",
        "user_changes",
        "batch_announcer",
        "kafka_groups",
    }


def test_the_tracker_transaction_id_is_stable_per_instance_and_namespace() -> None:
    topics = Topics("ns.")
    named = Settings(group_instance_id="dispatcher-0", instance_id="host-1")
    assert named.tracker_transactional_id(topics) == "dispatcher.ns.clarion.status.dispatcher-0"
    unnamed = Settings(instance_id="host-1")
    assert unnamed.tracker_transactional_id(topics) == "dispatcher.ns.clarion.status.host-1"
    assert unnamed.tracker_transactional_id(Topics("other.")) != (
        unnamed.tracker_transactional_id(topics)
    )
