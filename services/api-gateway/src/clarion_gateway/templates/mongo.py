"""The ``templates`` collection: one document per ``{app_id}:{template_id}``, its
versions embedded.

Sends read a template by ``_id``; lists read one app with a top-level equality on
``app_id``. Saves are conditional on ``revision`` (optimistic concurrency).
"""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from clarion_shared.logging import get_logger
from clarion_shared.mongo import Document, create_index_best_effort

from ..channels.mongo import stored_channel_type
from ..mongo import dump_json, load_json
from .domain import Template, TemplateChannel, TemplateVersion, VariableDef

log = get_logger(__name__)


def _version_doc(v: TemplateVersion) -> Document:
    return {
        "version": v.version,
        "status": v.status,
        "created_at": v.created_at,
        "approved_at": v.approved_at,
        "channels": [
            {
                "channel_type": c.channel_type,
                "channel_id": c.channel_id,
                "content": dump_json(c.content),
            }
            for c in v.channels
        ],
        "variable_schema": [
            {
                "key": s.key,
                "type": s.type,
                "name": s.name,
                "required": s.required,
                "default_value": s.default_value,
            }
            for s in v.variable_schema
        ],
    }


def _doc(t: Template, revision: int) -> Document:
    return {
        "_id": f"{t.app_id}:{t.template_id}",
        "app_id": t.app_id,
        "template_id": t.template_id,
        "name": t.name,
        "template_category": t.template_category,
        "label": t.label,
        "alternative_text": t.alternative_text,
        "tags": list(t.tags),
        "archived": t.archived,
        "revision": revision,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "versions": [_version_doc(v) for v in t.versions],
    }


def _variable(doc: Document) -> VariableDef:
    kind = doc["type"]
    return VariableDef(
        key=doc["key"],
        type="image" if kind == "image" else "action" if kind == "action" else "string",
        name=doc.get("name"),
        required=bool(doc.get("required")),
        default_value=doc.get("default_value"),
    )


def _version(doc: Document) -> TemplateVersion:
    return TemplateVersion(
        version=int(doc["version"]),
        status="approved" if doc["status"] == "approved" else "draft",
        created_at=int(doc["created_at"]),
        approved_at=int(doc["approved_at"]) if doc.get("approved_at") is not None else None,
        channels=tuple(
            TemplateChannel(
                channel_type=stored_channel_type(c["channel_type"]),
                channel_id=c.get("channel_id"),
                content=load_json(c.get("content")),
            )
            for c in doc.get("channels", [])
        ),
        variable_schema=tuple(_variable(s) for s in doc.get("variable_schema", [])),
    )


def _template(doc: Document) -> Template:
    return Template(
        app_id=doc["app_id"],
        template_id=doc["template_id"],
        name=doc["name"],
        versions=tuple(_version(v) for v in doc["versions"]),
        created_at=int(doc["created_at"]),
        updated_at=int(doc["updated_at"]),
        template_category=doc.get("template_category"),
        label=doc.get("label"),
        alternative_text=doc.get("alternative_text"),
        tags=tuple(doc.get("tags") or ()),
        archived=bool(doc.get("archived")),
        revision=int(doc.get("revision", 0)),
    )


class MongoTemplates:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db["templates"]

    async def start(self) -> None:
        """The per-app list's index; best effort (FerretDB lacks some)."""
        await create_index_best_effort(self._col, "app_id")

    async def stop(self) -> None:
        return None

    async def insert(self, template: Template) -> bool:
        try:
            await self._col.insert_one(_doc(template, template.revision))
        except DuplicateKeyError:
            return False
        return True

    async def get(self, app_id: str, template_id: str) -> Template | None:
        doc = await self._col.find_one({"_id": f"{app_id}:{template_id}"})
        return _template(doc) if doc else None

    async def list_for_app(self, app_id: str) -> list[Template]:
        return [_template(doc) async for doc in self._col.find({"app_id": app_id})]

    async def replace(self, template: Template) -> bool:
        result = await self._col.replace_one(
            {"_id": f"{template.app_id}:{template.template_id}", "revision": template.revision},
            _doc(template, template.revision + 1),
        )
        return result.matched_count == 1
