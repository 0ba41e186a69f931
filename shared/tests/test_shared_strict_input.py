"""Strict input: the middleware every service's app has (``http.create_app``): body
size, strict JSON bodies, path and query parameters."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request

from clarion_devtools.helpers import wait_until
from clarion_shared.errors import ErrorMapper
from clarion_shared.http import create_app
from clarion_shared.lifecycle import lifespan
from clarion_shared.strict_input import DEFAULT_MAX_BODY_BYTES, InputLimits


def test_the_limit_is_a_setting_with_a_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLARION_MAX_BODY_BYTES", raising=False)
    assert InputLimits().max_body_bytes == DEFAULT_MAX_BODY_BYTES == 8 * 1024 * 1024
    monkeypatch.setenv("CLARION_MAX_BODY_BYTES", "1024")
    assert InputLimits().max_body_bytes == 1024


def service(calls: list[str]) -> FastAPI:
    """An app made by ``create_app``, as every service's is, with routes that record
    that they ran."""
    app = create_app(
        "strict-test",
        "strict",
        lifespan("strict-test", []),
        errors=ErrorMapper(),
        readiness={},
        internal_token="t",
    )

    @app.post("/things")
    async def create(body: dict[str, Any]) -> dict[str, Any]:
        calls.append("create")
        return body

    @app.get("/things/{thing_id}")
    async def read(thing_id: str, q: str | None = None) -> dict[str, str | None]:
        calls.append("read")
        return {"id": thing_id, "q": q}

    @app.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        calls.append("raw")
        return {"size": len(await request.body())}

    return app


@pytest.fixture
def calls() -> list[str]:
    return []


@pytest.fixture
async def client(calls: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=service(calls))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
        yield http


JSON = {"content-type": "application/json"}


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert error["source"] == "clarion"
    assert response.headers["x-correlation-id"]
    return error


def padded(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    head = b'{"pad": "'
    return head + b"x" * (size - len(head) - 2) + b'"}'


async def test_a_body_of_8_mib_is_accepted_and_one_byte_more_is_413(
    client: httpx.AsyncClient, calls: list[str]
) -> None:
    limit = 8 * 1024 * 1024
    accepted = await client.post("/things", content=padded(limit), headers=JSON)
    assert accepted.status_code == 200
    too_large = await client.post("/things", content=padded(limit + 1), headers=JSON)
    error = error_of(too_large, 413, "ERR_PAYLOAD_TOO_LARGE")
    assert error["details"] == {"maxBytes": limit}
    assert calls == ["create"]


async def test_a_streamed_body_is_counted_as_it_comes(
    client: httpx.AsyncClient, calls: list[str]
) -> None:
    async def chunks(total: int) -> AsyncIterator[bytes]:
        body = padded(total)
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    small = await client.post("/things", content=chunks(1024 * 1024), headers=JSON)
    assert small.status_code == 200
    large = await client.post("/things", content=chunks(9 * 1024 * 1024), headers=JSON)
    error_of(large, 413, "ERR_PAYLOAD_TOO_LARGE")
    not_json = await client.post("/raw", content=chunks(9 * 1024 * 1024))
    error_of(not_json, 413, "ERR_PAYLOAD_TOO_LARGE")
    assert calls == ["create", "raw"]  # the raw route started, then its body was cut


async def test_the_limit_comes_from_the_environment(
    calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLARION_MAX_BODY_BYTES", "100")
    transport = httpx.ASGITransport(app=service(calls))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
        assert (await http.post("/things", content=padded(100), headers=JSON)).status_code == 200
        declared = await http.post("/things", content=padded(101), headers=JSON)
        error_of(declared, 413, "ERR_PAYLOAD_TOO_LARGE")
        raw = await http.post("/raw", content=b"x" * 101)
        error_of(raw, 413, "ERR_PAYLOAD_TOO_LARGE")
    assert calls == ["create"]  # refused by its Content-Length, before any route ran


async def test_json_bodies_are_checked_before_the_route_runs(
    client: httpx.AsyncClient, calls: list[str]
) -> None:
    for body, field in [
        (b'{"a": 1, "a": 2}', "a"),
        (b'{"a": {"b": NaN}}', "a.b"),
        (b'{"a": [1e999]}', "a.0"),
        (b'{"a": 9007199254740993}', "a"),
        (b'{"variables": {"alice": {"name": "x\\u0000"}}}', "variables.alice.name"),
        (b'{"a": "\\ud800"}', "a"),
    ]:
        for content_type in ("application/json", "application/merge-patch+json; charset=utf-8"):
            response = await client.post(
                "/things", content=body, headers={"content-type": content_type}
            )
            error = error_of(response, 400, "ERR_VALIDATION")
            assert error["details"][0]["field"] == field, error
            assert field in error["devMessage"]
    assert calls == []
    fine = await client.post("/things", content=b'{"a": "\\ud83d\\ude00"}', headers=JSON)
    assert fine.json() == {"a": "\U0001f600"}


async def test_malformed_json_is_answered_by_the_route_as_before(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/things", content=b'{"a": ', headers=JSON)
    error = error_of(response, 400, "ERR_VALIDATION")
    assert "JSON" in error["devMessage"]


async def test_path_and_query_parameters_are_checked(
    client: httpx.AsyncClient, calls: list[str]
) -> None:
    in_path = error_of(await client.get("/things/a%00b"), 400, "ERR_VALIDATION")
    assert [d["field"] for d in in_path["details"]] == ["thing_id"]
    in_query = error_of(await client.get("/things/a?q=x%00"), 400, "ERR_VALIDATION")
    assert [d["field"] for d in in_query["details"]] == ["q"]
    unknown_path = error_of(await client.get("/nowhere/%00"), 400, "ERR_VALIDATION")
    assert [d["field"] for d in unknown_path["details"]] == ["path"]
    assert calls == []
    fine = await client.get("/things/caf%C3%A9?q=%F0%9F%98%80")
    assert fine.json() == {"id": "café", "q": "\U0001f600"}


async def test_over_a_real_server_the_413_reaches_the_client_and_the_next_request_passes(
    calls: list[str],
) -> None:
    """uvicorn, not the in-process transport: the answer is read although the rest of
    the body was never consumed, and the client's next request is served."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(service(calls), log_config=None, lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:

        async def started() -> bool:
            return server.started

        await wait_until(started, timeout_s=10, interval_s=0.02, what="uvicorn started")
        big = padded(9 * 1024 * 1024)

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(big), 64 * 1024):
                yield big[start : start + 64 * 1024]

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            declared = await http.post("/things", content=big, headers=JSON)
            error_of(declared, 413, "ERR_PAYLOAD_TOO_LARGE")
            streamed = await http.post("/things", content=chunks(), headers=JSON)
            error_of(streamed, 413, "ERR_PAYLOAD_TOO_LARGE")
            fine = await http.post("/things", content=b'{"a": 1}', headers=JSON)
            assert fine.json() == {"a": 1}
    finally:
        server.should_exit = True
        await serving
        listener.close()
    assert calls == ["create"]
