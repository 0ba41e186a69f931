"""The public API's JSON shapes every service answers with: one base model and the
envelopes.

- :class:`ApiModel`: camelCase on the wire, snake_case in Python; unknown request
  fields are ignored (CometChat clients send extras such as ``dataType``).
- One item: ``{"data": {...}}`` (:class:`Data`).
- A page: ``{"data": [...], "meta": {"pagination": {"total", "count", "per_page",
  "current_page", "total_pages"}}}`` (:class:`Paged`).
- An error: ``{"error": {"code", "message", "devMessage", "details", "source"}}``
  (:class:`ErrorEnvelope`, for the OpenAPI document; built by ``errors``).
"""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

from .contracts.base import JsonObject

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


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorEnvelope, "description": "ERR_VALIDATION, ERR_BAD_REQUEST, domain codes"},
    401: {"model": ErrorEnvelope, "description": "ERR_UNAUTHORIZED: missing or wrong apikey"},
    404: {"model": ErrorEnvelope, "description": "ERR_NOT_FOUND"},
    409: {"model": ErrorEnvelope, "description": "ERR_CONFLICT"},
}
