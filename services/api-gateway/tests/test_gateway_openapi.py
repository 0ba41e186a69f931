"""The gateway's OpenAPI document tells the truth (issue 6): no 422, every error the
gateway can send documented in the envelope, a real schema on every 2xx (the proxied
operations included), the stream as ``text/event-stream``."""

from __future__ import annotations

from typing import Any

import pytest

from clarion_gateway.testing import Harness

ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}
USERS = "/v3/users"
FEED = "/v3/campaigns/notification-feed"
NOTIFICATION = "/v3/campaigns/notifications/{notification_id}"
SEND = "/v3/campaigns/notifications/messages"
CHANNELS = "/v3/campaigns/channels"

# The operations the gateway forwards to their owners, and their 2xx schemas.
PROXIED: dict[tuple[str, str], str] = {
    ("post", USERS): "Data_UserPublic_",
    ("get", USERS): "Paged_UserPublic_",
    ("post", f"{USERS}/import"): "Data_ImportResult_",
    ("get", f"{USERS}/{{uid}}"): "Data_UserPublic_",
    ("put", f"{USERS}/{{uid}}"): "Data_UserPublic_",
    ("delete", f"{USERS}/{{uid}}"): "Data_Deleted_",
    ("get", FEED): "Paged_FeedItemPublic_",
    ("get", f"{FEED}/unread-count"): "Data_UnreadCountPublic_",
    ("get", f"{FEED}/{{item_id}}"): "Data_FeedItemPublic_",
    ("post", f"{FEED}/{{item_id}}/read"): "Data_FeedItemPublic_",
    ("post", f"{FEED}/{{item_id}}/delivered"): "Data_FeedItemPublic_",
    ("delete", f"{FEED}/{{item_id}}"): "Data_Deleted_",
    ("get", NOTIFICATION): "Data_NotificationPublic_",
}
STREAM = ("get", f"{FEED}/stream")


@pytest.fixture
async def spec(harness: Harness) -> dict[str, Any]:
    response = await harness.client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, ops in spec["paths"].items()
        for method, operation in ops.items()
    ]


def expected_errors(method: str, path: str, operation: dict[str, Any]) -> set[str]:
    """The error statuses the gateway can answer ``method path`` with."""
    codes = {"400", "401", "500"}  # every route validates, authenticates, may fail
    if "requestBody" in operation:
        codes.add("413")
    if (method, path) in PROXIED or (method, path) == STREAM:
        codes |= {"404", "503", "504"}
    if path == SEND:
        codes |= {"403", "409", "429", "503", "504"}
    if (method, path) == ("post", CHANNELS):
        codes |= {"403", "409", "503"}
    if (method, path) == ("put", f"{CHANNELS}/{{channel_id}}"):
        codes |= {"404", "503"}
    return codes


def test_the_proxied_operations_are_all_documented(spec: dict[str, Any]) -> None:
    documented = {(method, path) for method, path, _ in operations(spec)}
    assert set(PROXIED) | {STREAM} <= documented


def test_no_422_anywhere(spec: dict[str, Any]) -> None:
    for method, path, operation in operations(spec):
        assert "422" not in operation["responses"], (method, path)
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    assert "HTTPValidationError" not in str(spec)


def test_every_operation_documents_its_errors_in_the_envelope(spec: dict[str, Any]) -> None:
    assert "ErrorEnvelope" in spec["components"]["schemas"]
    for method, path, operation in operations(spec):
        responses = operation["responses"]
        missing = expected_errors(method, path, operation) - set(responses)
        assert not missing, (method, path, missing)
        for status, response in responses.items():
            if status.startswith("2"):
                continue
            assert response["content"] == {"application/json": {"schema": ENVELOPE}}, (
                method,
                path,
                status,
            )
            assert response["description"], (method, path, status)


def test_every_2xx_has_a_real_schema(spec: dict[str, Any]) -> None:
    for method, path, operation in operations(spec):
        successes = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
        assert successes, (method, path)
        for status, response in successes.items():
            for media in response["content"].values():
                assert media.get("schema"), (method, path, status)


def test_the_proxied_operations_answer_the_owners_public_models(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for (method, path), model in PROXIED.items():
        ok = spec["paths"][path][method]["responses"]["200"]
        assert ok["content"] == {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}
        }, (method, path)
        assert model in schemas
    user = schemas["UserPublic"]["properties"]
    assert {"uid", "name", "metadata", "tags", "status", "lastActiveAt", "createdAt"} <= set(user)
    item = schemas["FeedItemPublic"]["properties"]
    assert {"id", "notificationId", "receiver", "content", "status", "sentAt", "readAt"} <= set(
        item
    )
    notification = schemas["NotificationPublic"]["properties"]
    assert {"notificationId", "mode", "receivers"} <= set(notification)
    assert {"created", "updated", "failed"} <= set(schemas["ImportResult"]["properties"])


def test_the_stream_is_text_event_stream(spec: dict[str, Any]) -> None:
    method, path = STREAM
    ok = spec["paths"][path][method]["responses"]["200"]
    assert list(ok["content"]) == ["text/event-stream"]
    assert ok["content"]["text/event-stream"]["schema"]["type"] == "string"
