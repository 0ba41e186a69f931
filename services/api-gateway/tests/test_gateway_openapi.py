"""The gateway's OpenAPI document tells the truth (issue 6): no 422, every error the
gateway can send documented in the envelope and none it cannot, a real schema on every
2xx (the proxied operations included: their bodies too), the stream as
``text/event-stream``, links from what creates an id to what takes it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from clarion_directory.app import Settings as DirectorySettings
from clarion_directory.app import build as build_directory
from clarion_gateway.errors import RESULT_STATUS
from clarion_gateway.testing import AUTH, Harness

ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}
USERS = "/v3/users"
FEED = "/v3/campaigns/notification-feed"
NOTIFICATION = "/v3/campaigns/notifications/{notification_id}"
BATCH = "/v3/campaigns/notifications/batches/{batch_id}"
SEND = "/v3/campaigns/notifications/messages"
SENDS = "/v3/campaigns/notifications"  # the sends listing (a Clarion extension)
SEND_RECEIVERS = f"{SENDS}/{{send_id}}/receivers"
CHANNELS = "/v3/campaigns/channels"
CHANNEL = f"{CHANNELS}/{{channel_id}}"
TEMPLATES = "/v3/campaigns/templates"
TEMPLATE = f"{TEMPLATES}/{{template_id}}"
CATEGORIES = f"{TEMPLATES}/categories"
CATEGORY = f"{CATEGORIES}/{{category_id}}"
FEED_ITEM = f"{FEED}/{{item_id}}"
USER = f"{USERS}/{{uid}}"
CAMPAIGNS = "/v3/campaigns/campaigns"
CAMPAIGN = f"{CAMPAIGNS}/{{campaign_id}}"
WEBHOOKS = "/v3/webhooks"
WEBHOOK = f"{WEBHOOKS}/{{webhook_id}}"
DELIVERY = f"{WEBHOOK}/deliveries/{{delivery_id}}"
ANALYTICS = "/v3/campaigns/analytics"
PUSH = "/v3/campaigns/push-notifications"
PUSH_ONE = f"{PUSH}/{{push_id}}"
ANALYTICS_OPERATIONS = (
    f"{ANALYTICS}/overview",
    f"{ANALYTICS}/campaigns/{{campaign_id}}",
    f"{ANALYTICS}/templates/{{template_id}}",
    f"{ANALYTICS}/channels",
    f"{ANALYTICS}/users/{{uid}}",
)

# The operations the gateway forwards to their owners, and their 2xx schemas.
PROXIED: dict[tuple[str, str], str] = {
    ("post", USERS): "Data_UserPublic_",
    ("get", USERS): "Paged_UserPublic_",
    ("post", f"{USERS}/import"): "Data_ImportResult_",
    ("get", f"{USERS}/{{uid}}"): "Data_UserPublic_",
    ("put", f"{USERS}/{{uid}}"): "Data_UserPublic_",
    ("delete", f"{USERS}/{{uid}}"): "Data_Deleted_",
    ("get", FEED): "Listed_FeedItemPublic_",
    ("get", f"{FEED}/unread-count"): "Data_UnreadCountPublic_",
    ("get", f"{FEED}/{{item_id}}"): "Data_FeedItemPublic_",
    ("post", f"{FEED}/{{item_id}}/read"): "Data_FeedItemPublic_",
    ("post", f"{FEED}/{{item_id}}/delivered"): "Data_FeedItemPublic_",
    ("post", f"{FEED}/{{item_id}}/engagement"): "Data_FeedItemPublic_",
    ("get", NOTIFICATION): "Data_NotificationPublic_",
    ("get", BATCH): "Data_BatchPublic_",
    ("get", f"{BATCH}/receivers"): "Paged_BatchReceiverPublic_",
    ("get", SENDS): "Paged_SendPublic_",
    ("get", SEND_RECEIVERS): "Paged_SendReceiverPublic_",
    **{("get", path): "Data_AnalyticsPublic_" for path in ANALYTICS_OPERATIONS},
    ("get", PUSH): "Data_list_PushNotificationPublic__",
    ("get", PUSH_ONE): "Data_PushNotificationPublic_",
    ("put", f"{PUSH_ONE}/delivered"): "Data_PushNotificationPublic_",
    ("put", f"{PUSH_ONE}/clicked"): "Data_PushNotificationPublic_",
    ("post", f"{PUSH_ONE}/engagement"): "Data_PushNotificationPublic_",
}
STREAM = ("get", f"{FEED}/stream")
FEED_DELETE = ("delete", FEED_ITEM)  # 204, no body (API.md, CometChat's spec)

# What each operation can answer besides 400, 401 and 500 (every route validates,
# authenticates and may fail) and 413 (every one with a body): nothing more is
# documented. 503/504: a peer (or the broker) unreachable or too slow.
PEER = {"503", "504"}
OWN_ERRORS: dict[tuple[str, str], set[str]] = {
    ("post", "/admin/apps"): {"409"},
    ("post", "/admin/operators"): {"409"},
    ("get", "/admin/operators"): set(),
    ("put", "/admin/operators/{email}/roles"): {"404"},
    ("post", CHANNELS): {"409", "503"},
    ("get", CHANNELS): set(),
    ("get", f"{CHANNELS}/availability"): set(),
    ("get", CHANNEL): {"404"},
    ("put", CHANNEL): {"404", "503"},
    ("post", TEMPLATES): {"409"},
    ("get", TEMPLATES): set(),
    ("get", TEMPLATE): {"404"},
    ("put", TEMPLATE): {"404", "409"},
    ("delete", TEMPLATE): {"404", "409"},
    ("post", f"{TEMPLATE}/versions"): {"404", "409"},
    ("put", f"{TEMPLATE}/channels/{{channel_type}}"): {"404", "409"},
    ("post", CATEGORIES): {"409"},
    ("get", CATEGORIES): set(),
    ("get", CATEGORY): {"404"},
    ("put", CATEGORY): {"404", "409"},
    ("delete", CATEGORY): {"404", "409"},
    ("post", SEND): {"403", "404", "409", "429", "503", "504"},
    ("get", NOTIFICATION): {"404", *PEER},
    ("get", PUSH): {"404", *PEER},
    ("get", PUSH_ONE): {"404", *PEER},
    ("put", f"{PUSH_ONE}/delivered"): {"404", *PEER},
    ("put", f"{PUSH_ONE}/clicked"): {"404", *PEER},
    ("post", f"{PUSH_ONE}/engagement"): {"404", *PEER},
    ("get", BATCH): {"404", *PEER},
    ("get", f"{BATCH}/receivers"): {"404", *PEER},
    ("get", SENDS): PEER,
    # Analytics: an id nothing was counted for answers zeros, never 404.
    **{("get", path): PEER for path in ANALYTICS_OPERATIONS},
    ("get", SEND_RECEIVERS): {"404", *PEER},
    ("get", f"{SEND_RECEIVERS}.csv"): {"404", *PEER},  # a CSV stream, not in PROXIED
    # Live progress (server-sent events): the batch's status is the dispatcher's.
    ("get", f"{BATCH}/events"): {"404", *PEER},
    ("get", f"{CAMPAIGN}/events"): {"404"},
    ("get", FEED): {"404", *PEER},
    ("get", f"{FEED}/unread-count"): {"404", *PEER},
    STREAM: {"404", *PEER},
    ("get", FEED_ITEM): {"404", *PEER},
    ("post", f"{FEED_ITEM}/read"): {"404", *PEER},
    ("post", f"{FEED_ITEM}/delivered"): {"404", *PEER},
    ("post", f"{FEED_ITEM}/engagement"): {"404", *PEER},
    FEED_DELETE: {"404", *PEER},
    ("post", USERS): {"409", *PEER},
    ("get", USERS): PEER,
    ("post", f"{USERS}/import"): PEER,
    ("get", USER): {"404", *PEER},
    ("put", USER): {"404", *PEER},
    ("delete", USER): {"404", *PEER},
    ("post", CAMPAIGNS): {"409"},
    ("get", CAMPAIGNS): set(),
    ("get", CAMPAIGN): {"404"},
    ("put", CAMPAIGN): {"404", "409"},
    ("delete", CAMPAIGN): {"404", "409"},
    ("post", f"{CAMPAIGN}/cancel"): {"404", "409"},
    # The broker or the dispatcher (the batch registry) unreachable: 503.
    ("post", f"{CAMPAIGN}/send"): {"404", "409", "503"},
    ("post", f"{CAMPAIGN}/schedule"): {"404", "409"},
    # The user-directory says which uids exist and whom a filter picks.
    ("post", f"{CAMPAIGN}/recipients"): {"404", "409", *PEER},
    ("get", f"{CAMPAIGN}/recipients"): {"404"},
    ("get", f"{CAMPAIGN}/recipients/summary"): {"404"},
    ("get", f"{CAMPAIGN}/sequence-metrics"): {"404"},
    # CSV imports: the directory is asked in the background, never by these.
    ("post", f"{CAMPAIGN}/recipients/upload-url"): {"404", "409"},
    ("post", f"{CAMPAIGN}/recipients/csv"): {"404", "409"},  # 413 with its body
    # With an S3 store configured, import-csv asks it whether the file is there.
    ("post", f"{CAMPAIGN}/import-csv"): {"404", "409", "503"},
    ("get", f"{CAMPAIGN}/import-status"): {"404"},
    # Dry runs of imports (started by import-csv and recipients/csv with dryRun).
    ("get", f"{CAMPAIGN}/dry-runs/{{dry_run_id}}"): {"404"},
    ("get", f"{CAMPAIGN}/dry-runs/{{dry_run_id}}/rejected.csv"): {"404", "409"},
    # Webhooks: 409 at 25 per app (or the Idempotency-Key's), an update racing others.
    ("post", WEBHOOKS): {"409"},
    ("get", WEBHOOKS): set(),
    ("get", WEBHOOK): {"404"},
    ("put", WEBHOOK): {"404", "409"},
    ("delete", WEBHOOK): {"404"},
    # Their deliveries, forwarded to the webhook-emitter once the webhook is the app's.
    ("get", f"{WEBHOOK}/deliveries"): {"404", *PEER},
    ("get", DELIVERY): {"404", *PEER},
    ("post", f"{DELIVERY}/retry"): {"404", "409", *PEER},
    ("post", f"{WEBHOOK}/replay"): {"404", *PEER},
}


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
    if (method, path) in PROXIED or (method, path) in (STREAM, FEED_DELETE):
        codes |= {"503", "504"}
    if path == SEND:
        codes |= {"403", "409", "429", "503", "504"}
    if (method, path) == ("post", CHANNELS):
        codes |= {"409", "503"}
    if (method, path) == ("put", f"{CHANNELS}/{{channel_id}}"):
        codes |= {"404", "503"}
    return codes | OWN_ERRORS[method, path]


def test_the_proxied_operations_are_all_documented(spec: dict[str, Any]) -> None:
    documented = {(method, path) for method, path, _ in operations(spec)}
    assert set(PROXIED) | {STREAM, FEED_DELETE} <= documented
    assert documented == set(OWN_ERRORS), "a new operation: say what it can answer"


def test_no_operation_documents_an_error_it_cannot_send(spec: dict[str, Any]) -> None:
    for method, path, operation in operations(spec):
        errors = {s for s in operation["responses"] if not s.startswith("2")}
        assert errors == expected_errors(method, path, operation), (method, path)


def test_every_status_a_rejected_send_can_take_is_documented(spec: dict[str, Any]) -> None:
    documented = set(spec["paths"][SEND]["post"]["responses"])
    assert {str(status) for status in RESULT_STATUS.values()} <= documented


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
            if status == "204":  # No Content: nothing to describe
                assert "content" not in response, (method, path)
                continue
            assert response["content"], (method, path, status)
            for media in response["content"].values():
                # An event stream describes each event (itemSchema), anything else its body.
                assert media.get("schema") or media.get("itemSchema"), (method, path, status)


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
    # Each event is described (OpenAPI 3.2's itemSchema), not the stream as one string.
    media = ok["content"]["text/event-stream"]
    assert "schema" not in media
    assert media["itemSchema"]["properties"]["event"]["enum"] == ["feed_item"]


def test_a_feed_item_delete_is_204_without_a_body(spec: dict[str, Any]) -> None:
    method, path = FEED_DELETE
    successes = {s: r for s, r in spec["paths"][path][method]["responses"].items() if s[0] == "2"}
    assert successes == {"204": {"description": "Deleted"}}


async def test_a_deleted_feed_item_answers_204_without_a_body(harness: Harness) -> None:
    harness.peer = lambda request: httpx.Response(200, json={"data": {"success": True}})
    response = await harness.client.delete(f"{FEED}/fi_1", headers={**AUTH, "onbehalfof": "u1"})
    assert response.status_code == 204
    assert response.content == b""
    harness.peer = lambda request: httpx.Response(
        404 if "/feed/" in request.url.path else 204,
        json={"error": {"code": "ERR_NOT_FOUND", "message": "Feed item not found."}},
    )
    missing = await harness.client.delete(f"{FEED}/fi_2", headers={**AUTH, "onbehalfof": "u1"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ERR_NOT_FOUND"


def _operation_at(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    path, method = ref.removeprefix("#/paths/").rsplit("/", 1)
    operation: dict[str, Any] = spec["paths"][path.replace("~1", "/").replace("~0", "~")][method]
    return operation


def test_every_link_names_an_operation_and_its_parameters(spec: dict[str, Any]) -> None:
    linked = set()
    for method, path, operation in operations(spec):
        for status, response in operation["responses"].items():
            for name, link in response.get("links", {}).items():
                target = _operation_at(spec, link["operationRef"])
                accepted = {f"{p['in']}.{p['name']}" for p in target.get("parameters", [])}
                for parameter, expression in link["parameters"].items():
                    qualified = parameter if "." in parameter else f"path.{parameter}"
                    assert qualified in accepted, (method, path, status, name, parameter)
                    assert expression.startswith(("$response.body#/", "$request.header.")), name
                linked.add(link["operationRef"])
    # What creates an id leads to what takes it: users, channels, templates, sends, feed.
    assert len(linked) >= 15, linked


def test_the_users_bodies_are_documented_as_the_directory_parses_them(
    spec: dict[str, Any],
) -> None:
    """The gateway forwards them unparsed; its document must say what the directory
    accepts, so both schemas are compared (titles, descriptions and examples aside)."""
    directory = build_directory(DirectorySettings()).openapi()
    internal = "/internal/apps/{app_id}/users"
    pairs = [
        (("post", USERS), ("post", internal)),
        (("post", f"{USERS}/import"), ("post", f"{internal}/import")),
        (("put", USER), ("put", f"{internal}/{{uid}}")),
    ]
    for (method, path), (own_method, own_path) in pairs:
        documented = spec["paths"][path][method]["requestBody"]
        assert documented["required"] is True
        ours = documented["content"]["application/json"]["schema"]
        owners_body = directory["paths"][own_path][own_method]["requestBody"]
        ref = owners_body["content"]["application/json"]["schema"]["$ref"]
        owners = _resolved(directory["components"]["schemas"][ref.rsplit("/", 1)[1]], directory)
        assert _bare(ours) == _bare(owners), path


def _resolved(node: Any, document: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolved(item, document) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        return _resolved(document["components"]["schemas"][name], document)
    return {key: _resolved(value, document) for key, value in node.items()}


_DOCUMENTATION = ("title", "description", "examples")  # words, not constraints


def _bare(node: Any) -> Any:
    if isinstance(node, list):
        return [_bare(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {k: _bare(v) for k, v in node.items() if k not in _DOCUMENTATION}
