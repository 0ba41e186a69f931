"""The ``users`` collection: the only place it is named.

One document per user, ``_id = "{app_id}:{uid}"``, so every per-user read and write is
an ``_id`` lookup (what the embedded FerretDB 1.x pushes down to SQL, besides top-level
equality; see ``LookupStrategy`` for what that still costs there). Documents carry
``app_id`` at the top level for listing, and lower-cased copies of uid and name for
case-insensitive prefix search.

``metadata`` is free JSON from clients; it is stored as a JSON string because MongoDB-
compatible servers refuse keys with ``.`` or a leading ``$`` (FerretDB always, MongoDB in
places), and the directory never queries inside it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Literal

from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from clarion_shared.caller import stop_if_caller_gone
from clarion_shared.contracts.base import JsonObject
from clarion_shared.logging import get_logger
from clarion_shared.mongo import Document, dump_json, load_json, server_info

from .domain import DEFAULT_ROLE, Status, UidAlreadyExists, User
from .models import UserUpdate
from .query import UserQuery
from .service import Upsert, UpsertResult, UserPage
from .snapshots import AppSnapshots

log = get_logger(__name__)

# Upserts in flight at once on FerretDB, one update per command (``_upsert_each``), for
# all imports together: reads are not queued behind every concurrent import's updates.
UPSERT_CONCURRENCY = 4

# Crossover measured on FerretDB 1.24 with 10k users in the app: concurrent _id reads
# take ~1.6 ms a uid (10: 23 ms, 80: 126 ms, 200: 330 ms), one $in ~400 ms whatever
# the count (it decodes all the app's users).
EACH_MAX = 128

LookupStrategy = Literal["auto", "in", "each"]
"""How a bulk uid lookup reads.

``auto`` (default): ``each`` for lookups of up to ``EACH_MAX`` uids (a realtime send's),
``in`` for larger ones.
``in``: one ``find({"app_id": a, "_id": {"$in": ids}})``. MongoDB answers it
from the ``_id`` index. FerretDB 1.24 pushes the ``app_id`` equality down to SQL and
applies ``$in`` to that app's rows: one pass over the app's users.
``each``: concurrent ``find_one({"_id": id})`` bounded by a semaphore. On FerretDB 1.24
each of them is a sequential scan of the whole collection in PostgreSQL: its pushed-down
filter (``_jsonb->'_id' @> ...``) cannot use the btree index it creates on ``_id``
(FerretDB issue #4646; a GIN index on ``_jsonb->'_id'`` fixes it).

Measured on FerretDB 1.24 / PostgreSQL, 2 shared cores, lookups of 1000 uids (medians):
10k users in the collection: ``in`` 0.76 s, ``each`` 1.38 s (concurrency 32; 8 to 64
within 1.4-2.0 s). 40k users, 10k of them in the app: ``in`` 1.0 s (3.8 s without the
``app_id`` equality), ``each`` 4.8 s, one ``find_one`` 11.6 ms.
"""

COLLECTION = "users"
SORT = [("created_at", ASCENDING), ("uid", ASCENDING)]
_REGEX_SPECIAL = re.compile(r"([\\^$.|?*+()\[\]{}])")


def doc_id(app_id: str, uid: str) -> str:
    return f"{app_id}:{uid}"


def prefix_regex(prefix: str) -> str:
    """An anchored regex for ``prefix``. Only regex metacharacters are escaped: Go's
    RE2 (FerretDB) rejects escapes such as ``\\ `` that Python's ``re.escape`` emits."""
    return "^" + _REGEX_SPECIAL.sub(r"\\\1", prefix)


def users_filter(app_id: str, query: UserQuery) -> Document:
    """The Mongo filter for a list query (same semantics as ``UserQuery.matches``).

    Cost on FerretDB 1.x: ``app_id`` and a single ``role`` or ``status`` are equalities
    and go to SQL; ``$in``, ranges and the prefix regex are applied by FerretDB after
    reading the app's users, and the two-key sort is done in memory. So a list costs a
    read of the app's users; on MongoDB the ``app_id, created_at, uid`` index serves it.
    """
    filter_: Document = {"app_id": app_id}
    roles = query.all_roles
    if len(roles) == 1:
        filter_["role"] = roles[0]
    elif roles:
        filter_["role"] = {"$in": list(roles)}
    if query.status is not None:
        filter_["status"] = query.status
    created: Document = {}
    if query.created_after is not None:
        created["$gte"] = query.created_after
    if query.created_before is not None:
        created["$lte"] = query.created_before
    if created:
        filter_["created_at"] = created
    if query.tags:
        filter_["tags"] = {"$in": list(query.tags)}
    prefix = query.search_prefix
    if prefix is not None:
        regex = prefix_regex(prefix)
        clauses: list[Document] = [{f"{field}_lc": {"$regex": regex}} for field in query.search_in]
        if len(clauses) == 1:
            filter_.update(clauses[0])
        else:
            filter_["$or"] = clauses
    return filter_


def to_document(user: User) -> Document:
    return {
        "_id": doc_id(user.app_id, user.uid),
        "app_id": user.app_id,
        "uid": user.uid,
        "uid_lc": user.uid.lower(),
        "name": user.name,
        "name_lc": user.name.lower(),
        "avatar": user.avatar,
        "link": user.link,
        "role": user.role,
        "metadata_json": dump_json(user.metadata),
        "tags": list(user.tags),
        "status": user.status,
        "last_active_at": user.last_active_at,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def from_document(doc: Document) -> User:
    return User(
        app_id=doc["app_id"],
        uid=doc["uid"],
        name=doc.get("name") or doc["uid"],
        avatar=doc.get("avatar"),
        link=doc.get("link"),
        role=doc.get("role") or DEFAULT_ROLE,
        metadata=load_json(doc.get("metadata_json") or "{}"),
        tags=doc.get("tags") or [],
        status=doc.get("status") or "offline",
        last_active_at=doc.get("last_active_at"),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


def _set_fields(changes: UserUpdate, at: int) -> Document:
    """``$set`` for the fields a change gives (plus their search copies)."""
    fields: Document = {}
    given = changes.model_fields_set
    if "name" in given and changes.name is not None:
        fields["name"] = changes.name
        fields["name_lc"] = changes.name.lower()
    for name in ("avatar", "link", "role", "tags"):
        if name in given:
            fields[name] = getattr(changes, name)
    if "metadata" in given:
        fields["metadata_json"] = dump_json(changes.metadata or {})
    if changes.status is not None:  # a presence change: as of ``at``
        fields["status"] = changes.status
        fields["last_active_at"] = at
    fields["updated_at"] = at
    return fields


def _upsert_update(app_id: str, upsert: Upsert) -> Document:
    """``$set`` the given fields; ``$setOnInsert`` the identity and the defaults of the
    others (the two may not name the same field)."""
    set_fields = _set_fields(upsert.changes, upsert.at)
    new = User(
        app_id=app_id, uid=upsert.uid, name=upsert.uid, created_at=upsert.at, updated_at=upsert.at
    )
    on_insert = {k: v for k, v in to_document(new).items() if k not in set_fields and k != "_id"}
    return {"$set": set_fields, "$setOnInsert": on_insert}


class MongoUserRepository:
    """Users in MongoDB (or FerretDB). Started (indexes created) before use."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        lookup: LookupStrategy = "auto",
        lookup_concurrency: int = 32,
    ) -> None:
        self._users: AsyncCollection[Document] = db[COLLECTION]
        self._db = db
        self._lookup = lookup
        self._lookup_concurrency = lookup_concurrency
        self._snapshots = AppSnapshots()
        self._ferretdb = False
        self._upsert_gate = asyncio.Semaphore(UPSERT_CONCURRENCY)

    async def start(self) -> None:
        """Create the indexes; learn which server this is (FerretDB or MongoDB)."""
        info = await server_info(self._db)
        self._ferretdb = info.ferretdb
        await self._users.create_index([("app_id", ASCENDING), *SORT], name="app_created_uid")
        log.info(
            "directory.storage_ready",
            server_version=info.version,
            ferretdb=info.ferretdb,
            lookup=self._lookup,
        )

    async def stop(self) -> None:
        """Nothing to release: the client is closed by whoever made it."""

    async def insert(self, user: User) -> None:
        self._snapshots.drop(user.app_id)
        try:
            await self._users.insert_one(to_document(user))
        except DuplicateKeyError:
            raise UidAlreadyExists(user.uid) from None

    async def get(self, app_id: str, uid: str) -> User | None:
        doc = await self._users.find_one({"_id": doc_id(app_id, uid)})
        return from_document(doc) if doc is not None else None

    async def get_many(self, app_id: str, uids: Sequence[str]) -> list[User]:
        """The users among ``uids``: one query (``in``) or concurrent ``_id`` reads
        (``each``); ``auto`` picks by size, and on FerretDB reads large lookups from a
        snapshot of the app (see ``LookupStrategy`` and ``AppSnapshots``)."""
        ids = [doc_id(app_id, uid) for uid in uids]
        if not ids:
            return []
        if self._lookup == "each" or (self._lookup == "auto" and len(ids) <= EACH_MAX):
            return await self._get_each(ids)
        if self._lookup == "auto" and self._ferretdb:
            return await self._from_snapshot(app_id, uids)
        docs = await self._users.find({"app_id": app_id, "_id": {"$in": ids}}).to_list(None)
        return [from_document(doc) for doc in docs]

    async def _from_snapshot(self, app_id: str, uids: Sequence[str]) -> list[User]:
        async with self._snapshots.lock(app_id):
            users = self._snapshots.fresh(app_id)
            loaded = users is None
            if users is None:
                users = await self._load_app(app_id)
            absent = [uid for uid in uids if uid not in users]
            if absent and not loaded:
                if len(absent) <= EACH_MAX:
                    for user in await self._get_each([doc_id(app_id, uid) for uid in absent]):
                        users[user.uid] = user
                else:
                    users = await self._load_app(app_id)
        return [users[uid] for uid in uids if uid in users]

    async def _load_app(self, app_id: str) -> dict[str, User]:
        # Read in batches of 1,000: each is decoded on its own, so a realtime lookup
        # on the same event loop waits for one batch, not the whole app.
        users: dict[str, User] = {}
        async for doc in self._users.find({"app_id": app_id}, batch_size=1000):
            user = from_document(doc)
            users[user.uid] = user
        self._snapshots.keep(app_id, users)
        return users

    async def _get_each(self, ids: Sequence[str]) -> list[User]:
        limit = asyncio.Semaphore(self._lookup_concurrency)

        async def one(id_: str) -> Document | None:
            async with limit:
                return await self._users.find_one({"_id": id_})

        docs = await asyncio.gather(*(one(id_) for id_ in ids))
        return [from_document(doc) for doc in docs if doc is not None]

    async def search(self, app_id: str, query: UserQuery) -> UserPage:
        filter_ = users_filter(app_id, query)
        total = await self._users.count_documents(filter_)
        if query.offset >= total:
            return UserPage(users=[], total=total)
        cursor = self._users.find(filter_).sort(SORT).skip(query.offset).limit(query.per_page)
        return UserPage(users=[from_document(doc) async for doc in cursor], total=total)

    async def search_uids(self, app_id: str, query: UserQuery, limit: int) -> list[str]:
        """``search``'s filter and order without its count and page slicing: one read of
        the matching users (on FerretDB, of the app's), bringing back only the sort keys,
        not the users' metadata."""
        fields = {"_id": 0, "uid": 1, "created_at": 1}
        cursor = self._users.find(users_filter(app_id, query), fields).sort(SORT).limit(limit)
        return [doc["uid"] async for doc in cursor]

    async def roles(self, app_id: str, limit: int) -> list[str]:
        # A $group, not ``distinct``: FerretDB 1.x refuses the deadline (maxTimeMS)
        # every operation of our client carries on ``distinct``.
        pipeline: list[Document] = [{"$match": {"app_id": app_id}}, {"$group": {"_id": "$role"}}]
        found = await (await self._users.aggregate(pipeline)).to_list(None)
        return sorted(str(doc["_id"]) for doc in found)[:limit]

    async def update(
        self,
        app_id: str,
        uid: str,
        changes: UserUpdate,
        at: int,
        if_metadata: JsonObject | None = None,
    ) -> User | None:
        self._snapshots.drop(app_id)
        # Every write stores ``dump_json`` of the metadata: a read's dumps back the same.
        stored = {} if if_metadata is None else {"metadata_json": dump_json(if_metadata)}
        doc = await self._users.find_one_and_update(
            {"_id": doc_id(app_id, uid), **stored},
            {"$set": _set_fields(changes, at)},
            return_document=ReturnDocument.AFTER,
        )
        return from_document(doc) if doc is not None else None

    async def delete(self, app_id: str, uid: str, not_after: int | None = None) -> bool:
        self._snapshots.drop(app_id)
        filter_: Document = {"_id": doc_id(app_id, uid)}
        if not_after is not None:
            filter_["updated_at"] = {"$lte": not_after}
        result = await self._users.delete_one(filter_)
        return result.deleted_count > 0

    async def upsert_many(self, app_id: str, upserts: Sequence[Upsert]) -> list[UpsertResult]:
        self._snapshots.drop(app_id)
        specs = [({"_id": doc_id(app_id, u.uid)}, _upsert_update(app_id, u)) for u in upserts]
        if not specs:
            return []
        if self._ferretdb:
            return await self._upsert_each(specs)
        ops = [UpdateOne(filter_, update, upsert=True) for filter_, update in specs]
        try:
            result = await self._users.bulk_write(ops, ordered=True)
        except (BulkWriteError, KeyError) as exc:
            # Rare (a concurrent insert of the same uid, an oversized document). FerretDB
            # 1.x stops at the first error even when unordered and omits ``nModified``,
            # which PyMongo trips over (KeyError); either way, apply one by one to learn
            # each outcome. Upserts are idempotent, so repeating the applied ones is safe
            # (a user created by the failed batch is then counted as updated).
            log.warning("directory.bulk_upsert_failed", app_id=app_id, error=repr(exc)[:300])
            return [await self._upsert_one(filter_, update) for filter_, update in specs]
        # Matched by _id, not by index: FerretDB 1.x numbers upserts by their rank among
        # the upserts instead of their index in the batch. The uids of a batch are unique.
        created = set((result.upserted_ids or {}).values())
        return [
            UpsertResult(outcome="created" if filter_["_id"] in created else "updated")
            for filter_, _ in specs
        ]

    async def _upsert_each(self, specs: Sequence[tuple[Document, Document]]) -> list[UpsertResult]:
        """One update per command, a few at a time: what FerretDB 1.24 can take.

        Its ``update`` command keeps one PostgreSQL connection per update that matched a
        stored document until the whole command ends, and takes one more for each write:
        a bulk that updates as many stored users as its pool holds (50) waits for ever
        on itself, and every other client with it (issue 6, finding 8). A command of
        one update needs at most two connections.
        """

        async def one(filter_: Document, update: Document) -> UpsertResult:
            async with self._upsert_gate:
                # A caller that left stops the rest (between operations: see
                # clarion_shared.caller.unless_caller_gone for why not during one).
                stop_if_caller_gone()
                return await self._upsert_one(filter_, update)

        return list(await asyncio.gather(*(one(f, u) for f, u in specs)))

    async def _upsert_one(self, filter_: Document, update: Document) -> UpsertResult:
        try:
            result = await self._users.update_one(filter_, update, upsert=True)
        except PyMongoError as exc:
            return UpsertResult(outcome="failed", error=str(exc)[:200])
        return UpsertResult(outcome="created" if result.upserted_id is not None else "updated")

    async def upsert_if_newer(self, app_id: str, upsert: Upsert) -> bool:
        self._snapshots.drop(app_id)
        try:
            result = await self._users.update_one(
                {"_id": doc_id(app_id, upsert.uid), "updated_at": {"$lte": upsert.at}},
                _upsert_update(app_id, upsert),
                upsert=True,
            )
        except DuplicateKeyError:
            # The user exists and was updated after ``at``: the event is stale.
            return False
        return result.matched_count > 0 or result.upserted_id is not None

    async def set_presence(self, app_id: str, uid: str, status: Status, at: int) -> bool:
        self._snapshots.drop(app_id)
        result = await self._users.update_one(
            {
                "_id": doc_id(app_id, uid),
                "$or": [{"last_active_at": None}, {"last_active_at": {"$lte": at}}],
            },
            {"$set": {"status": status, "last_active_at": at}},
        )
        return result.matched_count > 0
