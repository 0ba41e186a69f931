"""A user's push notifications over the dispatcher's internal HTTP API: the user's push
records, newest first, with the delivery workers' outcomes; delivered, clicked and
engagements reported by the receiver only, each kept the first time. The rules, the
reports' repository suite (in memory and on the real database), and the routes on the
in-memory adapters and on the Mongo ones."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from clarion_devtools.helpers import random_ref
from clarion_dispatcher.app import SERVICE, Settings
from clarion_dispatcher.delivery.models import DeliveryOutcome, OutcomeStatus
from clarion_dispatcher.delivery.mongo import MongoDeliveries
from clarion_dispatcher.delivery.service import DeliveryLog
from clarion_dispatcher.errors import ERRORS
from clarion_dispatcher.fanout import domain as fanout
from clarion_dispatcher.notifications.models import NotificationRecord
from clarion_dispatcher.notifications.mongo import MongoNotifications
from clarion_dispatcher.notifications.service import NotificationRepository
from clarion_dispatcher.push import domain
from clarion_dispatcher.push import routes as push_routes
from clarion_dispatcher.push.models import Engagement, PushState
from clarion_dispatcher.push.mongo import MongoPushStates
from clarion_dispatcher.push.service import PushStateRepository
from clarion_dispatcher.testing import InMemoryNotifications, profile, send_command
from clarion_dispatcher.testing.deliveries import InMemoryDeliveries
from clarion_dispatcher.testing.push import InMemoryPushStates
from clarion_shared import http
from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.contracts.sends import SendMode
from clarion_shared.http import internal_headers
from clarion_shared.lifecycle import lifespan

APP = "app1"
SETTINGS = Settings(topic_prefix="unit.", group_id="dispatcher-test")
NOW = 1_700_000_000


def records_of(
    send_id: str, uids: Sequence[str], at: int, app_id: str = APP, mode: SendMode = "realtime"
) -> list[NotificationRecord]:
    """A send's records on in_app and push; a uid starting with ``ghost`` is no user."""
    command = send_command(app_id, send_id, uids, channels=("in_app", "push"), mode=mode)
    known = {uid: profile(uid) for uid in uids if not uid.startswith("ghost")}
    return fanout.plan_chunk(command, known, at).records


def push_of(records: Sequence[NotificationRecord], uid: str) -> NotificationRecord:
    [found] = [r for r in records if r.uid == uid and r.channel_type == "push"]
    return found


def outcome(
    record: NotificationRecord, status: OutcomeStatus, at: int, error: ErrorInfo | None = None
) -> DeliveryOutcome:
    return DeliveryOutcome(
        job_id=record.id,
        app_id=record.app_id,
        send_id=record.send_id,
        uid=record.uid,
        channel_type=record.channel_type,
        channel_id=record.channel_id,
        status=status,
        error=error,
        at=at,
    )


REFUSED = ErrorInfo(code="ERR_PROVIDER_REJECTED", message="UNREGISTERED")

# ------------------------------------------------------------------------------ the rules


def test_the_status_is_the_last_report_then_the_outcome_then_queued() -> None:
    record = push_of(records_of("s1", ["alice"], NOW), "alice")
    delivered = PushState(id=record.id, app_id=APP, uid="alice", delivered_at=NOW + 5)
    clicked = delivered.model_copy(update={"clicked_at": NOW + 6})
    sent, failed = outcome(record, "sent", NOW + 1), outcome(record, "failed", NOW + 1, REFUSED)

    assert domain.push_status(record, None, None) == "queued"
    # A claim (a two-phase provider's commit under way) is not final yet.
    assert domain.push_status(record, outcome(record, "committing", NOW + 1), None) == "queued"
    assert domain.push_status(record, sent, None) == "sent"
    assert domain.push_status(record, failed, None) == "failed"
    assert domain.push_status(record, sent, delivered) == "delivered"
    assert domain.push_status(record, sent, clicked) == "clicked"
    assert domain.push_status(record, None, clicked) == "clicked"


def test_a_record_failed_at_the_fan_out_is_failed_with_its_error() -> None:
    record = push_of(records_of("s1", ["ghost"], NOW), "ghost")
    shown = domain.public_push(record, None, None)
    assert (shown.status, shown.code) == ("failed", fanout.ERR_USER_NOT_FOUND)
    assert shown.sent_at is None


def test_the_public_view_joins_record_outcome_and_reports() -> None:
    record = push_of(records_of("s1", ["alice"], NOW, mode="batch"), "alice")
    state = PushState(
        id=record.id,
        app_id=APP,
        uid="alice",
        engaged_at=NOW + 9,
        engagements=[
            Engagement(topic=None, at=NOW + 9),
            Engagement(topic="dismissed", at=NOW + 12),
        ],
        updated_at=NOW + 12,
    )
    shown = domain.public_push(record, outcome(record, "sent", NOW + 2), state).to_json()
    assert shown == {
        "id": record.id,
        "notificationId": "s1",
        "batchId": "s1",
        "campaignId": None,
        "receiver": "alice",
        "channelType": "push",
        "channelId": "push",
        "templateId": "order-shipped",
        "templateVersion": 1,
        "content": {"title": "Order A-1", "body": "Hi there"},
        "tag": None,
        "status": "sent",
        "sentAt": NOW + 2,
        "deliveredAt": None,
        "clickedAt": None,
        "engagedAt": NOW + 9,
        "engagementTopics": ["dismissed"],
        "createdAt": NOW,
        "updatedAt": NOW + 12,
    }
    failed = domain.public_push(record, outcome(record, "failed", NOW + 2, REFUSED), None)
    assert (failed.code, failed.message, failed.updated_at) == (
        "ERR_PROVIDER_REJECTED",
        "UNREGISTERED",
        NOW + 2,
    )


def test_only_the_receivers_push_records_are_theirs() -> None:
    records = records_of("s1", ["alice", "bob"], NOW)
    [in_app] = [r for r in records if r.uid == "alice" and r.channel_type == "in_app"]
    assert domain.is_theirs(push_of(records, "alice"), "alice")
    assert not domain.is_theirs(push_of(records, "bob"), "alice")
    assert not domain.is_theirs(in_app, "alice")
    assert not domain.is_theirs(None, "alice")


# ---------------------------------------------------- the reports, both repositories


class PushStateRepositorySuite:
    @pytest.fixture
    def repo(self) -> PushStateRepository:
        raise NotImplementedError

    async def test_each_report_keeps_its_first_time(self, repo: PushStateRepository) -> None:
        push_id = random_ref("push")
        first = await repo.mark(push_id, APP, "alice", "delivered", NOW + 1)
        again = await repo.mark(push_id, APP, "alice", "delivered", NOW + 5)
        clicked = await repo.mark(push_id, APP, "alice", "clicked", NOW + 7)
        clicked_again = await repo.mark(push_id, APP, "alice", "clicked", NOW + 9)

        assert (first.delivered_at, first.clicked_at, first.updated_at) == (NOW + 1, None, NOW + 1)
        assert again == first
        assert (clicked.delivered_at, clicked.clicked_at, clicked.updated_at) == (
            NOW + 1,
            NOW + 7,
            NOW + 7,
        )
        assert clicked_again == clicked
        assert await repo.of_many([push_id, random_ref("none")]) == {push_id: clicked}

    async def test_a_click_may_come_first(self, repo: PushStateRepository) -> None:
        push_id = random_ref("push")
        clicked = await repo.mark(push_id, APP, "alice", "clicked", NOW + 3)
        assert (clicked.id, clicked.app_id, clicked.uid) == (push_id, APP, "alice")
        assert (clicked.delivered_at, clicked.clicked_at) == (None, NOW + 3)

    async def test_engagements_keep_the_first_and_each_new_topic(
        self, repo: PushStateRepository
    ) -> None:
        push_id = random_ref("push")
        first = await repo.engage(push_id, APP, "alice", None, NOW + 1)
        repeated = await repo.engage(push_id, APP, "alice", None, NOW + 2)
        dismissed = await repo.engage(push_id, APP, "alice", "dismissed", NOW + 3)
        dismissed_again = await repo.engage(push_id, APP, "alice", "dismissed", NOW + 4)
        opened = await repo.engage(push_id, APP, "alice", "opened", NOW + 5)

        assert (first.engaged_at, [e.topic for e in first.engagements]) == (NOW + 1, [None])
        assert repeated == first
        assert [(e.topic, e.at) for e in dismissed.engagements] == [
            (None, NOW + 1),
            ("dismissed", NOW + 3),
        ]
        assert dismissed_again == dismissed
        assert (opened.engaged_at, opened.updated_at) == (NOW + 1, NOW + 5)
        assert [e.topic for e in opened.engagements] == [None, "dismissed", "opened"]
        assert opened.delivered_at is None

    async def test_a_first_engagement_with_a_topic_is_kept_once(
        self, repo: PushStateRepository
    ) -> None:
        push_id = random_ref("push")
        first = await repo.engage(push_id, APP, "alice", "dismissed", NOW + 1)
        again = await repo.engage(push_id, APP, "alice", "dismissed", NOW + 2)
        assert [(e.topic, e.at) for e in again.engagements] == [("dismissed", NOW + 1)]
        assert again == first


class TestInMemoryPushStates(PushStateRepositorySuite):
    @pytest.fixture
    def repo(self) -> PushStateRepository:
        return InMemoryPushStates()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def mongo_db(
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    name = random_ref("dispatcher_push").replace("-", "_")
    yield mongo_client[name]
    await mongo_client.drop_database(name)


@pytest.mark.integration
class TestMongoPushStates(PushStateRepositorySuite):
    @pytest_asyncio.fixture(loop_scope="session")
    async def repo(  # type: ignore[override]
        self, mongo_db: AsyncDatabase[dict[str, Any]]
    ) -> MongoPushStates:
        repo = MongoPushStates(mongo_db)
        await repo.start()
        return repo


# ------------------------------------------------------------------------------ the routes


@dataclass
class Api:
    client: httpx.AsyncClient
    notifications: NotificationRepository
    deliveries: DeliveryLog
    states: PushStateRepository
    app_id: str

    def base(self, uid: str = "alice") -> str:
        return f"/internal/apps/{self.app_id}/push-notifications/{uid}"

    async def sent(self, send_id: str, uids: Sequence[str], at: int) -> list[NotificationRecord]:
        records = records_of(send_id, uids, at, app_id=self.app_id)
        await self.notifications.add_many(records)
        return records


def push_app(
    notifications: NotificationRepository, deliveries: DeliveryLog, states: PushStateRepository
) -> FastAPI:
    """The dispatcher's HTTP app with the push routes only, as ``compose`` makes it."""
    app = http.create_app(
        SERVICE,
        "push notifications under test",
        lifespan(SERVICE, []),
        errors=ERRORS,
        readiness={},
        internal_token=SETTINGS.internal_token,
    )
    app.include_router(push_routes.router(notifications, deliveries, states))
    return app


async def api_on(
    notifications: NotificationRepository,
    deliveries: DeliveryLog,
    states: PushStateRepository,
    app_id: str,
) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=push_app(notifications, deliveries, states))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://dispatcher",
        headers=internal_headers(SETTINGS.internal_token),
    ) as client:
        yield Api(client, notifications, deliveries, states, app_id)


@pytest_asyncio.fixture(loop_scope="session")
async def api() -> AsyncIterator[Api]:
    async for made in api_on(
        InMemoryNotifications(), InMemoryDeliveries(), InMemoryPushStates(), APP
    ):
        yield made


async def test_the_list_is_the_users_push_notifications_newest_first(api: Api) -> None:
    first = await api.sent("s1", ["alice", "bob"], NOW)
    second = await api.sent("s2", ["alice"], NOW + 10)
    third = await api.sent("s3", ["alice"], NOW + 20)
    await api.deliveries.record(
        [
            outcome(push_of(first, "alice"), "sent", NOW + 1),
            outcome(push_of(second, "alice"), "failed", NOW + 11, REFUSED),
        ]
    )

    response = await api.client.get(api.base())

    assert response.status_code == 200, response.text
    shown = response.json()["data"]
    assert [(p["notificationId"], p["status"]) for p in shown] == [
        ("s3", "queued"),
        ("s2", "failed"),
        ("s1", "sent"),
    ]
    assert [p["id"] for p in shown] == [push_of(r, "alice").id for r in (third, second, first)]
    assert {p["receiver"] for p in shown} == {"alice"}
    assert (shown[1]["code"], shown[1]["message"]) == ("ERR_PROVIDER_REJECTED", "UNREGISTERED")
    assert "code" not in shown[0]
    assert shown[2]["sentAt"] == NOW + 1
    limited = await api.client.get(api.base(), params={"limit": "2"})
    assert [p["notificationId"] for p in limited.json()["data"]] == ["s3", "s2"]
    nobody = await api.client.get(api.base("carol"))
    assert nobody.json() == {"data": []}


@pytest.mark.parametrize("limit", ["0", "101", "ten", "-1"])
async def test_a_limit_out_of_range_is_400(api: Api, limit: str) -> None:
    response = await api.client.get(api.base(), params={"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ERR_VALIDATION"


async def test_one_push_notification_by_its_id(api: Api) -> None:
    records = await api.sent("s1", ["alice", "bob"], NOW)
    mine = push_of(records, "alice")
    await api.deliveries.record([outcome(mine, "sent", NOW + 3)])

    response = await api.client.get(f"{api.base()}/{mine.id}")

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["id"], data["status"], data["sentAt"]) == (mine.id, "sent", NOW + 3)
    assert data["content"] == {"title": "Order A-1", "body": "Hi there"}


async def test_another_users_or_another_channels_or_another_apps_is_404(api: Api) -> None:
    records = await api.sent("s1", ["alice", "bob"], NOW)
    others = await api.sent("s9", ["alice"], NOW)
    elsewhere = records_of("s9", ["alice"], NOW, app_id="app2")
    await api.notifications.add_many(elsewhere)
    [in_app] = [r for r in records if r.uid == "alice" and r.channel_type == "in_app"]
    bobs = push_of(records, "bob").id
    asked = [
        ("GET", bobs),
        ("PUT", f"{bobs}/delivered"),
        ("PUT", f"{bobs}/clicked"),
        ("POST", f"{bobs}/engagement"),
        ("GET", in_app.id),
        ("PUT", f"{in_app.id}/delivered"),
        ("GET", push_of(elsewhere, "alice").id),
        ("GET", "no-such-id"),
    ]
    for method, path in asked:
        response = await api.client.request(method, f"{api.base()}/{path}")
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "ERR_NOT_FOUND"
        assert response.json()["error"]["message"] == "Push notification not found."
    assert await api.states.of_many([bobs, in_app.id, push_of(others, "alice").id]) == {}


async def test_delivered_and_clicked_are_kept_the_first_time(api: Api) -> None:
    mine = push_of(await api.sent("s1", ["alice"], NOW), "alice")
    await api.deliveries.record([outcome(mine, "sent", NOW + 1)])
    path = f"{api.base()}/{mine.id}"

    delivered = await api.client.put(f"{path}/delivered")
    delivered_again = await api.client.put(f"{path}/delivered")
    clicked = await api.client.put(f"{path}/clicked")
    clicked_again = await api.client.put(f"{path}/clicked")

    assert delivered.status_code == 200, delivered.text
    first = delivered.json()["data"]
    assert first["status"] == "delivered"
    assert first["deliveredAt"] is not None
    assert delivered_again.json() == delivered.json()
    last = clicked.json()["data"]
    assert (last["status"], last["deliveredAt"]) == ("clicked", first["deliveredAt"])
    assert last["clickedAt"] is not None
    assert clicked_again.json() == clicked.json()
    assert (await api.client.get(path)).json() == clicked.json()
    # The outcome still shows: the provider took it then.
    assert last["sentAt"] == NOW + 1


async def test_engagements_with_and_without_a_topic(api: Api) -> None:
    mine = push_of(await api.sent("s1", ["alice"], NOW), "alice")
    path = f"{api.base()}/{mine.id}/engagement"

    plain = await api.client.post(path)
    empty = await api.client.post(path, json={})
    dismissed = await api.client.post(path, json={"topic": "dismissed", "dataType": "ignored"})
    again = await api.client.post(path, json={"topic": "dismissed"})

    assert plain.status_code == 200, plain.text
    engaged_at = plain.json()["data"]["engagedAt"]
    assert engaged_at is not None
    assert plain.json()["data"]["engagementTopics"] == []
    assert empty.json() == plain.json()
    assert dismissed.json()["data"]["engagementTopics"] == ["dismissed"]
    assert dismissed.json()["data"]["engagedAt"] == engaged_at
    assert again.json() == dismissed.json()
    # Engaging is not a delivery report: the status stays the provider's.
    assert dismissed.json()["data"]["status"] == "queued"


@pytest.mark.parametrize("topic", ["not ok", "x" * 65, ""])
async def test_a_topic_out_of_its_pattern_is_400(api: Api, topic: str) -> None:
    mine = push_of(await api.sent("s1", ["alice"], NOW), "alice")
    response = await api.client.post(f"{api.base()}/{mine.id}/engagement", json={"topic": topic})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ERR_VALIDATION"
    assert await api.states.of_many([mine.id]) == {}


# ------------------------------------------------------- the routes on the real database


@pytest_asyncio.fixture(loop_scope="session")
async def mongo_api(mongo_db: AsyncDatabase[dict[str, Any]]) -> AsyncIterator[Api]:
    notifications, deliveries = MongoNotifications(mongo_db), MongoDeliveries(mongo_db)
    states = MongoPushStates(mongo_db)
    for resource in (notifications, deliveries, states):
        await resource.start()
    async for made in api_on(notifications, deliveries, states, random_ref("app")):
        yield made


@pytest.mark.integration
async def test_the_routes_on_the_mongo_adapters(mongo_api: Api) -> None:
    api = mongo_api
    first = push_of(await api.sent("s1", ["alice", "bob"], NOW), "alice")
    second = push_of(await api.sent("s2", ["alice"], NOW + 10), "alice")
    await api.deliveries.record([outcome(first, "sent", NOW + 1)])
    await api.client.put(f"{api.base()}/{first.id}/delivered")
    await api.client.post(f"{api.base()}/{first.id}/engagement", json={"topic": "opened"})

    shown = (await api.client.get(api.base(), params={"limit": 5})).json()["data"]

    assert [(p["id"], p["status"]) for p in shown] == [
        (second.id, "queued"),
        (first.id, "delivered"),
    ]
    assert shown[1]["sentAt"] == NOW + 1
    assert shown[1]["engagementTopics"] == ["opened"]
    bobs = await api.client.get(f"{api.base('bob')}/{first.id}")
    assert bobs.status_code == 404
