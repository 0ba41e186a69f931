"""HTTP routes, one ``APIRouter`` per resource: parse, call one use case, answer."""

from __future__ import annotations

from fastapi import APIRouter

from . import apps, channels, messages, proxies, templates


def routers() -> list[APIRouter]:
    # The send route comes before the notification proxy: both live under
    # /v3/campaigns/notifications.
    return [
        apps.router,
        channels.router,
        templates.router,
        messages.router,
        proxies.notifications,
        proxies.feed,
        proxies.users,
    ]
