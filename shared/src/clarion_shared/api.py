"""The public API's JSON shapes every service answers with: one base model and the
envelopes.

- :class:`ApiModel`: camelCase on the wire, snake_case in Python; unknown request
  fields are ignored (CometChat clients send extras such as ``dataType``).
- One item: ``{"data": {...}}`` (:class:`Data`).
- A page: ``{"data": [...], "meta": {"pagination": {"total", "count", "per_page",
  "current_page", "total_pages"}}}`` (:class:`Paged`).
- A cursor page: ``{"data": [...], "meta": {"cursor": {"hasMore", "next"}}}``
  (:class:`Cursored`; the rules and ``cursor.listed`` are in ``cursor``);
  :class:`Listed` documents either.
- An error: ``{"error": {"code", "message", "devMessage", "details", "source"}}``
  (:class:`ErrorEnvelope`, for the OpenAPI document; built by ``errors``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, RootModel
from pydantic.alias_generators import to_camel

from .contracts.base import JsonObject

if TYPE_CHECKING:
    from .cursor import CursorPage

T = TypeVar("T")

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100


class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )

    def to_json(self) -> JsonObject:
        """The camelCase JSON of this model (for a status event's payload, say)."""
        data: JsonObject = self.model_dump(mode="json", by_alias=True)
        return data


class Data(ApiModel, Generic[T]):
    data: T


class Pagination(ApiModel):
    total: int
    count: int
    per_page: int = Field(alias="per_page")
    current_page: int = Field(alias="current_page")
    total_pages: int = Field(alias="total_pages")


class PageMeta(ApiModel):
    pagination: Pagination


class Paged(ApiModel, Generic[T]):
    data: list[T]
    meta: PageMeta

    @classmethod
    def of(cls, items: list[T], total: int, page: int, per_page: int) -> Paged[T]:
        """Page ``page`` (from 1) of ``per_page`` items, of ``total`` in all."""
        return cls(
            data=items,
            meta=PageMeta(
                pagination=Pagination(
                    total=total,
                    count=len(items),
                    per_page=per_page,
                    current_page=page,
                    total_pages=max(1, -(-total // per_page)),
                )
            ),
        )


class CursorState(ApiModel):
    has_more: bool = Field(description="Whether items remain beyond these, in the direction read.")
    next: dict[str, int | str] | None = Field(
        description="The cursor to pass with the same affix for the items beyond these: "
        "the sort value under its name (updatedAt, createdAt, name, channelType; sentAt on "
        "the feed) and id. Null when none remain.",
        examples=[{"updatedAt": 1764900000, "id": "welcome"}],
    )


class CursorMeta(ApiModel):
    cursor: CursorState


class Cursored(ApiModel, Generic[T]):
    data: list[T]
    meta: CursorMeta

    @classmethod
    def of(cls, page: CursorPage[T]) -> Cursored[T]:
        """The answer of ``page``, its ``next`` naming the sort value ``page.field``."""
        after = page.next
        return cls(
            data=page.items,
            meta=CursorMeta(
                cursor=CursorState(
                    has_more=page.has_more,
                    next=None if after is None else {page.field: after.value, "id": after.id},
                )
            ),
        )


class Listed(RootModel[Paged[T] | Cursored[T]], Generic[T]):
    """A list's answer: a page (page mode, the default) or a cursor page (cursor mode:
    when ``limit``, ``affix``, ``id``, a cursor value, ``sort`` or ``order`` is given)."""


class Deleted(ApiModel):
    success: bool = True


class ErrorBody(ApiModel):
    code: str = Field(examples=["ERR_VALIDATION"])
    message: str
    dev_message: str
    details: JsonValue = None
    source: str = "clarion"


class ErrorEnvelope(ApiModel):
    error: ErrorBody


Responses = dict[int | str, dict[str, object]]
"""A route's ``responses`` (FastAPI): status → model and description."""


def error_response(description: str) -> dict[str, object]:
    """One error answer in the envelope, for a route's ``responses``."""
    return {"model": ErrorEnvelope, "description": description}


BAD_REQUEST_RESPONSE = error_response("ERR_VALIDATION, ERR_BAD_REQUEST, domain codes")
UNAUTHORIZED_RESPONSE = error_response("ERR_UNAUTHORIZED: missing or wrong apikey")
NOT_FOUND_RESPONSE = error_response("ERR_NOT_FOUND")
CONFLICT_RESPONSE = error_response("ERR_CONFLICT")

CLIENT_ERRORS: Responses = {400: BAD_REQUEST_RESPONSE, 401: UNAUTHORIZED_RESPONSE}
"""What every authenticated route can answer: its input refused, its caller unknown. A
route adds only the statuses it can send besides (404 only where something is looked
up, 409 only where something can collide): the document promises nothing more."""

ERROR_RESPONSES: Responses = {
    **CLIENT_ERRORS,
    404: NOT_FOUND_RESPONSE,
    409: CONFLICT_RESPONSE,
}
"""The internal APIs' usual four (the public gateway documents each route's own)."""


INTERNAL_ERROR_RESPONSE = error_response("ERR_INTERNAL: an unexpected failure (no stack trace)")
TOO_LARGE_RESPONSE = error_response(
    "ERR_PAYLOAD_TOO_LARGE: the body is over CLARION_MAX_BODY_BYTES"
)
UNAVAILABLE_RESPONSE = error_response(
    "ERR_UNAVAILABLE: a service or the broker it needs is unreachable (Retry-After)"
)
TIMEOUT_RESPONSE = error_response("ERR_TIMEOUT: a service it needs did not answer in time")
PEER_RESPONSES: Responses = {
    503: UNAVAILABLE_RESPONSE,
    504: TIMEOUT_RESPONSE,
}
"""The answers of a route that calls another service (503 unreachable, 504 too slow)."""

_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """A route's ``openapi_extra`` documenting a JSON body of ``model`` that the route
    does not parse itself (the gateway forwards it to the service that does).

    The schema is inlined, its definitions (``$defs``) put where they are referred to,
    so that nothing points outside the route; a recursive model is refused.
    """
    schema = model.model_json_schema(by_alias=True, mode="validation")
    definitions = schema.pop("$defs", {})
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inlined(schema, definitions, ())}},
        }
    }


def _inlined(node: Any, definitions: dict[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inlined(item, definitions, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        if name in seen:
            raise ValueError(f"{name} is recursive: it cannot be inlined")
        return _inlined(definitions[name], definitions, (*seen, name))
    return {key: _inlined(value, definitions, seen) for key, value in node.items()}


def document_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """The generated OpenAPI document ``spec``, made to tell the truth about errors.

    FastAPI documents a 422 ``HTTPValidationError`` on every operation with parameters;
    the services answer request validation with 400 ``ERR_VALIDATION`` instead (every
    router documents it), so the 422 and its schemas go. Every operation can answer 500
    ``ERR_INTERNAL``, and every one with a body 413 ``ERR_PAYLOAD_TOO_LARGE``
    (``strict_input``): both are added here, in the envelope, rather than on each route.
    """
    envelope_ref = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            added = {"500": INTERNAL_ERROR_RESPONSE}
            if "requestBody" in operation:
                added["413"] = TOO_LARGE_RESPONSE
            for status, answer in added.items():
                responses.setdefault(
                    status,
                    {
                        "description": answer["description"],
                        "content": {"application/json": {"schema": envelope_ref}},
                    },
                )
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in _VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    if "ErrorEnvelope" not in schemas:
        envelope_schema = ErrorEnvelope.model_json_schema(
            ref_template="#/components/schemas/{model}", mode="serialization"
        )
        schemas.update(envelope_schema.pop("$defs", {}))
        schemas["ErrorEnvelope"] = envelope_schema
    return spec


def openapi_link(method: str, path: str, parameters: dict[str, str]) -> dict[str, object]:
    """An OpenAPI link to the operation ``method path`` of the same document, with
    ``parameters`` as runtime expressions (``{"uid": "$response.body#/data/uid"}``;
    ``header.onbehalfof`` names a header)."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {"operationRef": f"#/paths/{pointer}/{method}", "parameters": parameters}
