"""The dashboard's doors: signing in and out, sessions, the sign-in rate limit, CSRF
and origin checks, roles per app, admin operator routes and what pages never hold."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from clarion_gateway.app import Settings
from clarion_gateway.operators.domain import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD
from clarion_gateway.testing import (
    ADMIN,
    DEV_APP,
    DEV_KEY,
    ORIGIN,
    Harness,
    csrf_of,
    gateway_harness,
    make_settings,
    sign_in,
)

USERS = f"/dashboard/apps/{DEV_APP}/users"


async def _login(
    client: httpx.AsyncClient, email: str, password: str, **headers: str
) -> httpx.Response:
    return await client.post(
        "/dashboard/login",
        data={"email": email, "password": password},
        headers={"origin": ORIGIN, **headers},
    )


async def _operator(harness: Harness, email: str, roles: dict[str, str]) -> None:
    body: dict[str, Any] = {"email": email, "password": "a long passphrase", "roles": roles}
    response = await harness.client.post("/admin/operators", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text


async def test_the_first_operator_has_an_argon2id_hash(harness: Harness) -> None:
    stored = harness.store.operators.items[DEV_ADMIN_EMAIL]
    assert stored.superuser
    assert stored.password_hash.startswith("$argon2id$")
    assert DEV_ADMIN_PASSWORD not in stored.password_hash


async def test_signing_in_sets_a_session_cookie_and_stores_only_its_hash(
    harness: Harness,
) -> None:
    response = await _login(harness.client, "Admin@Clarion.LOCAL", DEV_ADMIN_PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("clarion_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # the public URL is http
    token = cookie.split(";")[0].split("=", 1)[1]
    assert list(harness.store.sessions.items) == [hashlib.sha256(token.encode()).hexdigest()]
    page = await harness.client.get("/dashboard")
    assert page.status_code == 200
    assert "Clarion dev app" in page.text
    [entry] = harness.store.audit.entries
    assert (entry.actor, entry.action) == (DEV_ADMIN_EMAIL, "operator.sign_in")


async def test_the_cookie_is_secure_behind_https() -> None:
    async with gateway_harness(make_settings(public_url="https://clarion.example")) as h:
        response = await _login(
            h.client, DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD, origin="https://clarion.example"
        )
        assert response.status_code == 303
        assert "Secure" in response.headers["set-cookie"]


async def test_a_wrong_password_and_an_unknown_email_read_the_same(harness: Harness) -> None:
    wrong = await _login(harness.client, DEV_ADMIN_EMAIL, "not the password")
    unknown = await _login(harness.client, "nobody@example.com", "not the password")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "The email or the password is wrong." in response.text
        assert "set-cookie" not in response.headers
    assert harness.store.sessions.items == {}


async def test_too_many_failures_are_429_with_retry_after(harness: Harness) -> None:
    for _ in range(5):
        response = await _login(harness.client, DEV_ADMIN_EMAIL, "not the password")
        assert response.status_code == 401
    throttled = await _login(harness.client, DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD)
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["retry-after"]) <= 15 * 60
    assert "Too many failed sign-ins" in throttled.text
    assert harness.store.sessions.items == {}
    # Another email from the same address is counted apart (up to the address's ceiling).
    await _operator(harness, "ana@example.com", {DEV_APP: "viewer"})
    assert (await _login(harness.client, "ana@example.com", "a long passphrase")).status_code == 303


async def test_signing_out_ends_the_session(harness: Harness) -> None:
    browser = await sign_in(harness.client)
    response = await browser.post("/dashboard/logout", {})
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/login"
    assert harness.store.sessions.items == {}
    again = await harness.client.get("/dashboard")
    assert again.status_code == 303
    assert again.headers["location"].startswith("/dashboard/login?next=")


async def test_an_expired_session_goes_back_to_sign_in(harness: Harness) -> None:
    await sign_in(harness.client)
    [(token_hash, session)] = harness.store.sessions.items.items()
    harness.store.sessions.items[token_hash] = replace(
        session, last_seen_at=session.last_seen_at - 3 * 3600
    )
    response = await harness.client.get(f"{USERS}?search=an")
    assert response.status_code == 303
    assert response.headers["location"] == (
        "/dashboard/login?next=%2Fdashboard%2Fapps%2Fclarion-dev%2Fusers%3Fsearch%3Dan"
    )
    assert harness.store.sessions.items == {}
    htmx = await harness.client.get(USERS, headers={"hx-request": "true"})
    assert htmx.headers["hx-redirect"].startswith("/dashboard/login?next=")


async def test_sign_in_returns_to_the_page_asked_for_and_nowhere_else(harness: Harness) -> None:
    login = await harness.client.get("/dashboard/login?next=https://evil.example/x")
    assert 'name="next" value="/dashboard"' in login.text
    response = await harness.client.post(
        "/dashboard/login",
        data={"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD, "next": USERS},
        headers={"origin": ORIGIN},
    )
    assert response.headers["location"] == USERS


async def test_a_missing_or_wrong_csrf_token_is_refused(harness: Harness) -> None:
    browser = await sign_in(harness.client)
    missing = await harness.client.post("/dashboard/logout", headers={"origin": ORIGIN})
    wrong = await harness.client.post(
        "/dashboard/logout", data={"csrf_token": "nope"}, headers={"origin": ORIGIN}
    )
    for response in (missing, wrong):
        assert response.status_code == 403
        assert "security token" in response.text
    assert len(harness.store.sessions.items) == 1
    by_header = await harness.client.post(
        "/dashboard/logout", headers={"origin": ORIGIN, "x-csrf-token": browser.csrf}
    )
    assert by_header.status_code == 303


async def test_a_missing_or_foreign_origin_is_refused(harness: Harness) -> None:
    for headers in ({}, {"origin": "https://evil.example"}):
        response = await harness.client.post(
            "/dashboard/login",
            data={"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD},
            headers=headers,
        )
        assert response.status_code == 403
        assert "did not come from a Clarion dashboard page" in response.text
    browser = await sign_in(harness.client)
    foreign = await browser.client.post(
        "/dashboard/logout",
        data={"csrf_token": browser.csrf},
        headers={"origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    assert len(harness.store.sessions.items) == 1


async def test_another_apps_pages_are_not_found(harness: Harness) -> None:
    other = await harness.client.post("/admin/apps", json={"name": "Other"}, headers=ADMIN)
    other_app = other.json()["data"]["appId"]
    await _operator(harness, "ana@example.com", {other_app: "owner"})
    await sign_in(harness.client, "ana@example.com", "a long passphrase")
    apps = await harness.client.get("/dashboard")
    assert "Other" in apps.text
    assert "Clarion dev app" not in apps.text
    for path in (USERS, f"{USERS}/u1", "/dashboard/apps/no-such-app/users"):
        response = await harness.client.get(path)
        assert response.status_code == 404, path
        assert "not yours to see" in response.text
    assert harness.peer_requests == []


async def test_pages_carry_security_headers_and_no_api_key(harness: Harness) -> None:
    login = await harness.client.get("/dashboard/login")
    await sign_in(harness.client)
    pages = [login, await harness.client.get("/dashboard"), await harness.client.get(USERS)]
    pages.append(await harness.client.get(f"/dashboard/apps/{DEV_APP}/audit"))
    for page in pages:
        assert page.status_code == 200
        assert page.headers["content-security-policy"].startswith(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "frame-ancestors 'none'"
        )
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        assert page.headers["cache-control"] == "no-store"
        assert "apikey" not in page.text.lower()
        assert DEV_KEY not in page.text
        assert "<script>" not in page.text
        assert " style=" not in page.text
    static = await harness.client.get("/dashboard/static/clarion.css")
    assert static.status_code == 200
    assert static.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_admin_operator_routes(harness: Harness) -> None:
    body = {
        "email": "Ana@Example.com",
        "password": "a long passphrase",
        "roles": {DEV_APP: "editor"},
    }
    created = await harness.client.post("/admin/operators", json=body, headers=ADMIN)
    assert created.status_code == 201
    assert created.json()["data"] == {
        "email": "ana@example.com",
        "superuser": False,
        "roles": {DEV_APP: "editor"},
        "createdAt": created.json()["data"]["createdAt"],
    }
    again = await harness.client.post(
        "/admin/operators", json={**body, "email": "ANA@example.com"}, headers=ADMIN
    )
    assert again.status_code == 409
    unknown_app = await harness.client.post(
        "/admin/operators",
        json={**body, "email": "bo@example.com", "roles": {"nope": "viewer"}},
        headers=ADMIN,
    )
    assert unknown_app.status_code == 400
    assert (await harness.client.post("/admin/operators", json=body)).status_code == 401
    roles = await harness.client.put(
        "/admin/operators/ana@example.com/roles", json={"roles": {DEV_APP: "viewer"}}, headers=ADMIN
    )
    assert roles.json()["data"]["roles"] == {DEV_APP: "viewer"}
    missing = await harness.client.put(
        "/admin/operators/zed@example.com/roles", json={"roles": {}}, headers=ADMIN
    )
    assert missing.status_code == 404
    listed = await harness.client.get("/admin/operators", headers=ADMIN)
    assert [o["email"] for o in listed.json()["data"]] == [DEV_ADMIN_EMAIL, "ana@example.com"]
    assert "argon2" not in listed.text
    spec = (await harness.client.get("/openapi.json")).json()
    assert {"/admin/operators", "/admin/operators/{email}/roles"} <= set(spec["paths"])
    assert not [path for path in spec["paths"] if path.startswith("/dashboard")]


async def test_the_login_page_is_readable_and_csrf_free_until_signed_in(harness: Harness) -> None:
    page = await harness.client.get("/dashboard/login")
    for text in ('<label for="email">Email</label>', '<label for="password">Password</label>'):
        assert text in page.text
    assert '<button type="submit">Sign in</button>' in page.text
    assert 'name="csrf-token"' not in page.text
    browser = await sign_in(harness.client)
    assert csrf_of((await harness.client.get("/dashboard")).text) == browser.csrf


def test_the_first_operators_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLARION_DASHBOARD_ADMIN_EMAIL", "root@example.com")
    monkeypatch.setenv("CLARION_DASHBOARD_ADMIN_PASSWORD", "a long passphrase")
    assert Settings().first_operator() == ("root@example.com", "a long passphrase")
    monkeypatch.delenv("CLARION_DASHBOARD_ADMIN_PASSWORD")
    assert Settings().first_operator() == ("root@example.com", DEV_ADMIN_PASSWORD)
    production = Settings(environment="production", admin_token="s", internal_token="t")
    assert production.first_operator() is None  # operators come from /admin
    with pytest.raises(ValidationError):
        Settings(
            environment="production",
            admin_token="s",
            internal_token="t",
            dashboard_admin_password=DEV_ADMIN_PASSWORD,
        )
