"""Fixtures of the gateway's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from clarion_gateway.testing import Harness, gateway_harness


@pytest_asyncio.fixture
async def harness() -> AsyncIterator[Harness]:
    async with gateway_harness() as h:
        yield h
