"""One suite for each repository, run on the in-memory fake and on the real Mongo adapter.

The Mongo runs are integration tests (FerretDB by default): they show the queries the
adapters use are answered correctly by the embedded server, and the fakes the unit
tests rely on behave the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from clarion_devtools.helpers import logged_client, random_ref
from clarion_devtools.localinfra import InfraAddresses
from clarion_dispatcher.fanout import domain
from clarion_dispatcher.feed.domain import FeedFilter, feed_owner, sort_key
from clarion_dispatcher.feed.models import Engagement, FeedItem
from clarion_dispatcher.feed.mongo import MongoFeed
from clarion_dispatcher.feed.service import FeedRepository
from clarion_dispatcher.notifications.mongo import MongoNotifications
from clarion_dispatcher.notifications.service import NotificationRepository
from clarion_dispatcher.testing import (
    InMemoryFeed,
    InMemoryNotifications,
    profile,
    send_command,
    template,
)

NOW = 1_700_000_000
ALL = FeedFilter()


def planned(
    app_id: str, send_id: str, uids: list[str], now: int = NOW, **options: Any
) -> domain.ChunkPlan:
    """A chunk's plan; send ids are made unique per app, like the gateway's real ones."""
    send_id = f"{app_id}-{send_id}"
    known = {uid: profile(uid) for uid in uids if not uid.startswith("ghost")}
    return domain.plan_chunk(send_command(app_id, send_id, uids, **options), known, now)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def mongo_db(
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    """One database for this module's Mongo runs, dropped at the end."""
    name = random_ref("dispatcher_repos").replace("-", "_")
    yield mongo_client[name]
    await mongo_client.drop_database(name)


# ------------------------------------------------------------------- notifications


class NotificationRepositorySuite:
    @pytest.fixture
    def repo(self) -> NotificationRepository:
        raise NotImplementedError

    async def test_records_round_trip_per_send_and_app(self, repo: NotificationRepository) -> None:
        app = random_ref("app")
        plan = planned(app, "send-1", ["alice", "ghost"], mode="batch", channels=("in_app", "sms"))
        await repo.add_many(plan.records)
        await repo.add_many(planned(app, "send-2", ["alice"]).records)

        found = await repo.for_send(app, f"{app}-send-1")

        assert sorted(found, key=lambda r: r.id) == sorted(plan.records, key=lambda r: r.id)
        failed = [r for r in found if r.status == "failed"]
        assert {r.error.code for r in failed if r.error} == {domain.ERR_USER_NOT_FOUND}
        assert {r.batch_id for r in found} == {f"{app}-send-1"}
        assert await repo.for_send(random_ref("other"), f"{app}-send-1") == []

    async def test_adding_again_never_changes_a_stored_record(
        self, repo: NotificationRepository
    ) -> None:
        app = random_ref("app")
        first = planned(app, "send-1", ["alice"]).records
        later = planned(app, "send-1", ["alice"], now=NOW + 99).records
        await repo.add_many(first)
        await repo.add_many(later)

        (stored,) = await repo.for_send(app, f"{app}-send-1")
        assert stored == first[0]

    async def test_a_write_mixing_stored_and_new_records_adds_the_new_ones(
        self, repo: NotificationRepository
    ) -> None:
        # A fetch can hold a replayed chunk (stored) beside a new one: both in one write.
        app = random_ref("app")
        replayed = planned(app, "send-1", ["alice", "carol"]).records
        await repo.add_many(replayed[:1])
        fresh = planned(app, "send-2", ["bob"]).records
        await repo.add_many([*replayed, *fresh])

        assert len(await repo.for_send(app, f"{app}-send-1")) == 2
        assert len(await repo.for_send(app, f"{app}-send-2")) == 1

    async def test_any_json_key_of_a_content_is_stored_and_read_back(
        self, repo: NotificationRepository
    ) -> None:
        """Template content is client JSON: keys with ``.`` or a leading ``$``, which the
        database refuses in field names, made every receiver's write fail (issue 6)."""
        app = random_ref("app")
        plan = planned(app, "send-1", ["alice"], channels=("push",))
        odd = {"$title": "Hi", "data.key": {"$in": [1, "two"]}, "": "empty key"}
        records = [r.model_copy(update={"content": odd}) for r in plan.records]
        await repo.add_many(records)
        (stored,) = await repo.for_send(app, f"{app}-send-1")
        assert stored.content == odd

    async def test_put_replaces_stored_records(self, repo: NotificationRepository) -> None:
        app = random_ref("app")
        sent = planned(app, "send-1", ["alice", "bob"]).records
        await repo.add_many(sent)
        failed = [r.model_copy(update={"status": "failed", "content": None}) for r in sent[1:]]
        await repo.put_many(failed)
        stored = {r.uid: r.status for r in await repo.for_send(app, f"{app}-send-1")}
        assert stored == {"alice": "sent", "bob": "failed"}

    async def test_a_chunks_and_a_users_records_are_read_apart(
        self, repo: NotificationRepository
    ) -> None:
        app, other = random_ref("app"), random_ref("app")
        both = ("in_app", "push")
        for n in range(3):  # alice's pushes of three sends, newest last
            plan = planned(app, f"s{n}", ["alice", "bob"], now=NOW + n, channels=both)
            await repo.add_many(plan.records)
        later = planned(app, "s0", ["carol"], chunk=1, channels=both)
        await repo.add_many([*later.records, *planned(other, "s0", ["alice"]).records])

        chunk = await repo.for_chunk(app, f"{app}-s0", 0)
        assert sorted((r.uid, r.channel_type) for r in chunk) == [
            ("alice", "in_app"),
            ("alice", "push"),
            ("bob", "in_app"),
            ("bob", "push"),
        ]
        assert [r.uid for r in await repo.for_chunk(app, f"{app}-s0", 1)] == ["carol"] * 2
        pushes = await repo.for_user(app, "alice", "push", 2)
        assert [r.send_id for r in pushes] == [f"{app}-s2", f"{app}-s1"]
        assert {r.channel_type for r in pushes} == {"push"}
        assert [r.send_id for r in await repo.for_user(other, "alice", "in_app", 5)] == [
            f"{other}-s0"
        ]


class TestInMemoryNotifications(NotificationRepositorySuite):
    @pytest.fixture
    def repo(self) -> NotificationRepository:
        return InMemoryNotifications()


@pytest.mark.integration
class TestMongoNotifications(NotificationRepositorySuite):
    @pytest_asyncio.fixture(loop_scope="session")
    async def repo(  # type: ignore[override]
        self, mongo_db: AsyncDatabase[dict[str, Any]]
    ) -> MongoNotifications:
        repo = MongoNotifications(mongo_db)
        await repo.start()
        return repo


@pytest.mark.integration
async def test_a_chunks_and_a_users_records_are_each_one_indexed_equality(
    infra: InfraAddresses, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    """On the embedded FerretDB an equality is found by the GIN twin of an index's
    leading field only: a read by ``send_id`` and ``chunk`` went through the whole
    send's records, and a user's push list through all of the app's records."""
    async with logged_client(infra.mongodb_url) as (client, commands):
        repo = MongoNotifications(client[mongo_db.name])
        await repo.start()
        app = random_ref("app")
        await repo.add_many(planned(app, "s0", ["alice", "bob"], channels=("push",)).records)
        commands.clear()
        assert len(await repo.for_chunk(app, f"{app}-s0", 0)) == 2
        assert len(await repo.for_user(app, "alice", "push", 20)) == 1
        filters = [cmd["filter"] for name, cmd in commands.sent if name == "find"]
        indexes = await client[mongo_db.name]["notifications"].index_information()
        leading = {index["key"][0][0] for index in indexes.values()}
        assert [list(where) for where in filters] == [["chunk_key"], ["user_key"]]
        assert {"chunk_key", "user_key"} <= leading


# -------------------------------------------------------------------------- feed


def feed_items(app: str, uid: str, count: int, start: int = NOW) -> list[FeedItem]:
    items: list[FeedItem] = []
    for n in range(count):
        items.extend(planned(app, f"send-{n}", [uid], now=start + n).feed_items)
    return items


def feed_item(app: str, n: int, *, at: int = NOW, **changes: Any) -> FeedItem:
    """Alice's feed item of send ``n`` at ``at``, with ``changes`` to its fields."""
    (made,) = planned(app, f"send-{n}", ["alice"], now=at, created_at=at).feed_items
    return made.model_copy(update=changes)


def ids(items: list[FeedItem]) -> list[str]:
    return [i.id for i in items]


class FeedRepositorySuite:
    @pytest.fixture
    def repo(self) -> FeedRepository:
        raise NotImplementedError

    async def test_page_is_newest_first_with_totals(self, repo: FeedRepository) -> None:
        app = random_ref("app")
        owner = feed_owner(app, "alice")
        items = feed_items(app, "alice", 5)
        await repo.add_many(items)
        await repo.add_many(feed_items(app, "bob", 2))

        first, total = await repo.page(owner, ALL, False, skip=0, limit=2)
        last, _ = await repo.page(owner, ALL, False, skip=4, limit=2)
        beyond, beyond_total = await repo.page(owner, ALL, False, skip=6, limit=2)

        newest_first = [i.id for i in reversed(items)]
        assert total == 5
        assert [i.id for i in first] == newest_first[:2]
        assert [i.id for i in last] == newest_first[4:]
        assert (beyond, beyond_total) == ([], 5)
        assert first[0] == items[-1]

    async def test_same_second_items_are_ordered_by_id_descending(
        self, repo: FeedRepository
    ) -> None:
        app = random_ref("app")
        items = [planned(app, f"s{n}", ["alice"]).feed_items[0] for n in range(4)]
        await repo.add_many(items)
        page, _ = await repo.page(feed_owner(app, "alice"), ALL, False, 0, 10)
        assert [i.id for i in page] == sorted((i.id for i in items), reverse=True)

    async def test_read_state_filter_and_unread_count(self, repo: FeedRepository) -> None:
        app = random_ref("app")
        owner = feed_owner(app, "alice")
        items = feed_items(app, "alice", 3)
        await repo.add_many(items)

        transition = await repo.mark_read(owner, items[0].id, at=NOW + 10)

        assert transition is not None
        assert transition.changed
        assert (transition.item.read, transition.item.status) == (True, "read")
        assert transition.item.read_at == NOW + 10
        read, read_total = await repo.page(owner, FeedFilter(read=True), False, 0, 10)
        unread, unread_total = await repo.page(owner, FeedFilter(read=False), False, 0, 10)
        assert ([i.id for i in read], read_total) == ([items[0].id], 1)
        assert (len(unread), unread_total) == (2, 2)
        assert await repo.unread_count(owner) == 2

    async def test_transitions_happen_once(self, repo: FeedRepository) -> None:
        app = random_ref("app")
        owner = feed_owner(app, "alice")
        one, two = feed_items(app, "alice", 2)
        await repo.add_many([one, two])

        delivered = await repo.mark_delivered(owner, one.id, at=NOW + 1)
        delivered_again = await repo.mark_delivered(owner, one.id, at=NOW + 2)
        read = await repo.mark_read(owner, one.id, at=NOW + 3)
        read_again = await repo.mark_read(owner, one.id, at=NOW + 4)

        assert delivered is not None
        assert delivered_again is not None
        assert read is not None
        assert read_again is not None
        assert (delivered.changed, delivered.item.status) == (True, "delivered")
        assert (delivered_again.changed, delivered_again.item.delivered_at) == (False, NOW + 1)
        assert (read.changed, read.item.status, read.item.delivered_at) == (True, "read", NOW + 1)
        assert (read_again.changed, read_again.item.read_at) == (False, NOW + 3)

        # Delivered after read: the time is kept, the status stays "read".
        await repo.mark_read(owner, two.id, at=NOW + 5)
        late = await repo.mark_delivered(owner, two.id, at=NOW + 6)
        assert late is not None
        assert (late.changed, late.item.status, late.item.delivered_at) == (True, "read", NOW + 6)

    async def test_a_transition_owes_its_event_until_it_is_published(
        self, repo: FeedRepository
    ) -> None:
        app = random_ref("app")
        owner = feed_owner(app, "alice")
        (item,) = feed_items(app, "alice", 1)
        await repo.add_many([item])

        read = await repo.mark_read(owner, item.id, at=NOW + 1)
        assert read is not None
        assert read.item.read_event_pending
        again = await repo.mark_read(owner, item.id, at=NOW + 2)
        assert again is not None
        assert again.item.read_event_pending  # still owed: nobody published it yet

        await repo.event_published(owner, item.id, "read")
        delivered = await repo.mark_delivered(owner, item.id, at=NOW + 3)
        assert delivered is not None
        assert not delivered.item.read_event_pending
        assert delivered.item.delivered_event_pending
        await repo.event_published(owner, item.id, "delivered")
        stored = await repo.get(owner, item.id)
        assert stored is not None
        assert not stored.read_event_pending
        assert not stored.delivered_event_pending

    async def test_replaying_items_keeps_their_state(self, repo: FeedRepository) -> None:
        app = random_ref("app")
        owner = feed_owner(app, "alice")
        (item,) = feed_items(app, "alice", 1)
        await repo.add_many([item])
        await repo.mark_read(owner, item.id, at=NOW + 1)

        await repo.add_many([item])

        stored = await repo.get(owner, item.id)
        assert stored is not None
        assert stored.read is True
        assert await repo.unread_count(owner) == 0

    async def test_other_owners_do_not_see_the_item(self, repo: FeedRepository) -> None:
        app = random_ref("app")
        (item,) = feed_items(app, "alice", 1)
        await repo.add_many([item])
        for stranger in (feed_owner(app, "bob"), feed_owner("other", "alice")):
            assert await repo.get(stranger, item.id) is None
            assert await repo.mark_read(stranger, item.id, at=NOW) is None
            assert await repo.mark_delivered(stranger, item.id, at=NOW) is None
            assert await repo.delete(stranger, item.id) is False
        owner = feed_owner(app, "alice")
        assert await repo.delete(owner, item.id) is True
        assert await repo.delete(owner, item.id) is False
        assert await repo.get(owner, item.id) is None

    async def test_odd_keys_round_trip_and_removed_items_are_gone(
        self, repo: FeedRepository
    ) -> None:
        app = random_ref("app")
        owner = feed_owner(app, "alice")
        [item] = feed_items(app, "alice", 1)
        odd = item.model_copy(update={"content": {"$title": "Hi", "a.b": {"$gt": 1}}})
        await repo.add_many([odd])
        assert await repo.get(owner, item.id) == odd
        await repo.remove_many([item.id, "never-stored"])
        assert await repo.get(owner, item.id) is None

    async def test_scan_reads_beyond_a_key_in_either_direction(self, repo: FeedRepository) -> None:
        app = random_ref("app")
        owner = feed_owner(app, "alice")
        # Two items share each second: the id breaks the tie.
        items = [feed_item(app, n, at=NOW + n // 2) for n in range(6)]
        await repo.add_many(items)
        ordered = sorted(items, key=sort_key)

        newest = await repo.scan(owner, ALL, None, ascending=False, limit=4)
        older = await repo.scan(owner, ALL, sort_key(newest[-1]), ascending=False, limit=4)
        oldest = await repo.scan(owner, ALL, None, ascending=True, limit=2)
        newer = await repo.scan(owner, ALL, sort_key(ordered[1]), ascending=True, limit=10)

        assert ids(newest) == ids(ordered[::-1][:4])
        assert ids(older) == ids(ordered[::-1][4:])
        assert ids(oldest) == ids(ordered[:2])
        assert ids(newer) == ids(ordered[2:])
        assert await repo.scan(feed_owner(app, "bob"), ALL, None, True, 10) == []

    async def test_pages_in_both_orders_with_the_total(self, repo: FeedRepository) -> None:
        app = random_ref("app")
        owner = feed_owner(app, "alice")
        items = [feed_item(app, n, at=NOW + n) for n in range(5)]
        await repo.add_many(items)

        oldest, total = await repo.page(owner, ALL, True, 0, 2)
        third, _ = await repo.page(owner, ALL, True, 4, 2)

        assert (ids(oldest), total) == (ids(items[:2]), 5)
        assert ids(third) == ids(items[4:])

    async def test_filters_dates_inclusive_tags_channel_and_category(
        self, repo: FeedRepository
    ) -> None:
        app = random_ref("app")
        owner = feed_owner(app, "alice")
        items = [
            feed_item(app, 0, at=NOW, tag="promo", template_category="Marketing"),
            feed_item(app, 1, at=NOW + 10, tag="news", channel_id="in-app-2"),
            feed_item(app, 2, at=NOW + 20, tag=None, template_category="Alerts"),
            feed_item(app, 3, at=NOW + 30, tag="promo", read=True),
        ]
        await repo.add_many(items)

        async def matching(where: FeedFilter) -> list[str]:
            found, total = await repo.page(owner, where, True, 0, 10)
            scanned = await repo.scan(owner, where, None, True, 10)
            assert (ids(scanned), total) == (ids(found), len(found))
            return ids(found)

        assert await matching(FeedFilter(sent_from=NOW + 10, sent_to=NOW + 20)) == ids(items[1:3])
        assert await matching(FeedFilter(sent_from=NOW + 10.5)) == ids(items[2:])
        assert await matching(FeedFilter(tags=frozenset({"promo"}))) == ids([items[0], items[3]])
        assert await matching(FeedFilter(tags=frozenset({"promo", "news"}))) == ids(
            [items[0], items[1], items[3]]
        )
        assert await matching(FeedFilter(tags=frozenset())) == []
        assert await matching(FeedFilter(template_category="Alerts")) == ids([items[2]])
        assert await matching(FeedFilter(channel_id="in-app-2")) == ids([items[1]])
        assert await matching(FeedFilter(tags=frozenset({"promo"}), read=False)) == ids([items[0]])

    async def test_an_engagement_is_stored_once_per_topic(self, repo: FeedRepository) -> None:
        app = random_ref("app")
        owner = feed_owner(app, "alice")
        stored = feed_item(app, 0)
        await repo.add_many([stored])

        first = await repo.engage(owner, stored.id, "clicked", NOW + 1)
        again = await repo.engage(owner, stored.id, "clicked", NOW + 2)
        untopical = await repo.engage(owner, stored.id, None, NOW + 3)
        shared = await repo.engage(owner, stored.id, "shared", NOW + 4)

        assert first is not None
        assert again is not None
        assert untopical is not None
        assert shared is not None
        assert (first.changed, again.changed, untopical.changed, shared.changed) == (
            True,
            False,
            False,  # engaged already: a report without a topic adds nothing
            True,
        )
        after = shared.item
        assert after.engaged_at == NOW + 1
        assert after.updated_at == NOW + 4
        assert after.engagements == [
            Engagement(topic="clicked", at=NOW + 1),
            Engagement(topic="shared", at=NOW + 4),
        ]
        assert after.engagement_events_pending == ["clicked", "shared"]

        await repo.engagement_published(owner, stored.id, "clicked")
        now = await repo.get(owner, stored.id)
        assert now is not None
        assert now.engagement_events_pending == ["shared"]
        assert await repo.engage(feed_owner(app, "bob"), stored.id, "x", NOW) is None
        assert await repo.engage(owner, "never-stored", None, NOW) is None

    async def test_a_first_engagement_without_a_topic(self, repo: FeedRepository) -> None:
        app = random_ref("app")
        owner = feed_owner(app, "alice")
        stored = feed_item(app, 0)
        await repo.add_many([stored])

        first = await repo.engage(owner, stored.id, None, NOW + 1)
        repeat = await repo.engage(owner, stored.id, None, NOW + 2)
        clicked = await repo.engage(owner, stored.id, "clicked", NOW + 3)

        assert first is not None
        assert repeat is not None
        assert clicked is not None
        assert (first.changed, repeat.changed, clicked.changed) == (True, False, True)
        assert clicked.item.engaged_at == NOW + 1
        assert clicked.item.engagement_events_pending == [None, "clicked"]
        await repo.engagement_published(owner, stored.id, None)
        after = await repo.get(owner, stored.id)
        assert after is not None
        assert after.engagement_events_pending == ["clicked"]

    async def test_transitions_stamp_updated_at(self, repo: FeedRepository) -> None:
        app = random_ref("app")
        owner = feed_owner(app, "alice")
        stored = feed_item(app, 0)
        await repo.add_many([stored])
        assert stored.updated_at is None  # never changed since sent
        delivered = await repo.mark_delivered(owner, stored.id, NOW + 5)
        read = await repo.mark_read(owner, stored.id, NOW + 9)
        assert delivered is not None
        assert read is not None
        assert (delivered.item.updated_at, read.item.updated_at) == (NOW + 5, NOW + 9)

    async def test_the_template_category_round_trips(self, repo: FeedRepository) -> None:
        app = random_ref("app")
        snapshot = template(("in_app",)).model_copy(update={"template_category": "Alerts"})
        (made,) = planned(app, "s", ["alice"], template_snapshot=snapshot).feed_items
        await repo.add_many([made])
        stored = await repo.get(feed_owner(app, "alice"), made.id)
        assert stored is not None
        assert stored.template_category == "Alerts"


class TestInMemoryFeed(FeedRepositorySuite):
    @pytest.fixture
    def repo(self) -> FeedRepository:
        return InMemoryFeed()


@pytest.mark.integration
class TestMongoFeed(FeedRepositorySuite):
    @pytest_asyncio.fixture(loop_scope="session")
    async def repo(  # type: ignore[override]
        self, mongo_db: AsyncDatabase[dict[str, Any]]
    ) -> MongoFeed:
        repo = MongoFeed(mongo_db)
        await repo.start()
        return repo
