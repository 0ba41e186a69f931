"""Signing in to the dashboard from a test, and what its pages hold (for every
dashboard page's tests: users, templates, campaigns, ...)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from ..operators.domain import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD

# Settings.public_url's default: the Origin a dashboard form posts from.
ORIGIN = "http://127.0.0.1:8080"
_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token a page carries (in its <meta name="csrf-token">)."""
    found = _CSRF.search(html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


@dataclass
class Browser:
    """A signed-in operator: the client holds the session cookie."""

    client: httpx.AsyncClient
    csrf: str
    origin: str = ORIGIN

    async def post(self, path: str, data: dict[str, Any], **headers: str) -> httpx.Response:
        """A form posted from a dashboard page (its Origin and CSRF token)."""
        return await self.client.post(
            path,
            data={"csrf_token": self.csrf, **data},
            headers={"origin": self.origin, **headers},
        )


async def sign_in(
    client: httpx.AsyncClient,
    email: str = DEV_ADMIN_EMAIL,
    password: str = DEV_ADMIN_PASSWORD,
    origin: str = ORIGIN,
) -> Browser:
    """Sign in through the login form; the client keeps the cookie."""
    response = await client.post(
        "/dashboard/login",
        data={"email": email, "password": password},
        headers={"origin": origin},
    )
    assert response.status_code == 303, response.text
    page = await client.get("/dashboard")
    assert page.status_code == 200, page.text
    return Browser(client, csrf_of(page.text), origin)
