"""Every service's OpenAPI document (``http.create_app``) documents the errors it sends:
400 in the envelope instead of FastAPI's 422, 500 on every operation, 413 on every one
with a body (issue 6)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, JsonValue

from clarion_shared.api import ERROR_RESPONSES, document_errors, json_body, openapi_link
from clarion_shared.errors import ErrorMapper
from clarion_shared.http import create_app
from clarion_shared.lifecycle import lifespan

ENVELOPE = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}


class Thing(BaseModel):
    name: str


def service() -> FastAPI:
    app = create_app(
        "openapi-test",
        "openapi",
        lifespan("openapi-test", []),
        errors=ErrorMapper(),
        readiness={},
        internal_token="t",
    )

    @app.post("/internal/apps/{app_id}/things", responses=ERROR_RESPONSES)
    async def create(app_id: str, body: Thing) -> Thing:
        return body

    @app.get("/internal/apps/{app_id}/things")
    async def find(app_id: str, limit: int = 10) -> list[Thing]:
        return []

    return app


async def spec_of(app: FastAPI) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        document: dict[str, Any] = (await client.get("/openapi.json")).json()
    return document


async def test_no_422_and_the_envelope_for_500_and_413() -> None:
    spec = await spec_of(service())
    path = spec["paths"]["/internal/apps/{app_id}/things"]
    post, get = path["post"]["responses"], path["get"]["responses"]
    assert "422" not in post
    assert "422" not in get
    assert "HTTPValidationError" not in str(spec)
    assert "ValidationError" not in spec["components"]["schemas"]
    assert post["500"]["content"] == ENVELOPE == get["500"]["content"]
    assert post["413"]["content"] == ENVELOPE
    assert "413" not in get  # no body, nothing too large
    assert post["400"]["content"] == ENVELOPE


def test_the_envelope_schema_is_added_when_no_route_names_it() -> None:
    spec = document_errors(
        {"paths": {"/x": {"get": {"responses": {"200": {"description": "ok"}}}}}}
    )
    assert spec["paths"]["/x"]["get"]["responses"]["500"]["content"] == ENVELOPE
    schemas = spec["components"]["schemas"]
    assert schemas["ErrorEnvelope"]["properties"]["error"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    assert "devMessage" in schemas["ErrorBody"]["properties"]


def test_the_document_is_made_once() -> None:
    app = service()
    assert app.openapi() is app.openapi()


class Inner(BaseModel):
    size: int


class Outer(BaseModel):
    inner: Inner
    free: dict[str, JsonValue]


class Tree(BaseModel):
    children: list[Tree]


def test_a_forwarded_body_is_documented_inline() -> None:
    body = json_body(Outer)["requestBody"]
    assert body["required"] is True
    schema = body["content"]["application/json"]["schema"]
    assert "$defs" not in schema
    assert "$ref" not in str(schema)
    assert schema["properties"]["inner"]["properties"]["size"]["type"] == "integer"
    assert schema["required"] == ["inner", "free"]


def test_a_recursive_body_cannot_be_inlined() -> None:
    with pytest.raises(ValueError, match="recursive"):
        json_body(Tree)


def test_a_link_points_at_an_operation_of_the_same_document() -> None:
    link = openapi_link("get", "/v3/users/{uid}", {"uid": "$response.body#/data/uid"})
    assert link == {
        "operationRef": "#/paths/~1v3~1users~1{uid}/get",
        "parameters": {"uid": "$response.body#/data/uid"},
    }
