"""Waiting on a background run (a CSV import or its dry run) of this process."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping


async def wait_for(
    running: Mapping[str, asyncio.Task[None]], run_id: str, timeout_s: float | None
) -> bool:
    """Whether the run ``run_id`` is over within ``timeout_s``; at once True when it
    does not run here. Its task is waited on, never cancelled (``asyncio.wait``): a
    caller that goes leaves it running."""
    task = running.get(run_id)
    if task is None:
        return True
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    return bool(done)
