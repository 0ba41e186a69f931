"""CPU seconds per process, read from ``/proc``: what the benchmark's processes and the
embedded infrastructure used between two moments (no profiler needed)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

LOCAL = str(Path(__file__).resolve().parents[1] / ".local")  # the embedded infrastructure's


def cpu_seconds(named: Mapping[str, int]) -> dict[int, tuple[str, float]]:
    """The CPU seconds (user + system) used so far, with their group, by pid: of the
    ``named`` processes (name: pid), this process (``bench``), its Mailpit child
    (``mailpit``), and the embedded Kafka (``kafka``), FerretDB (``ferretdb``) and
    PostgreSQL (``postgres``: every backend) of this checkout (``.local``), not
    another clone's."""
    tick = os.sysconf("SC_CLK_TCK")
    names = {pid: name for name, pid in named.items()} | {os.getpid(): "bench"}
    stats: dict[int, tuple[str, int, float]] = {}  # pid: (command, parent, seconds)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):  # gone meanwhile
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()  # from the state, field 3, on
            command = stat[stat.index("(") + 1 : stat.rindex(")")]
            seconds = (int(fields[11]) + int(fields[12])) / tick
            stats[int(entry.name)] = (command, int(fields[1]), seconds)
    roots = {pid: group for pid, (name, _, _) in stats.items() if (group := _infra(pid, name))}
    used: dict[int, tuple[str, float]] = {}
    for pid, (_, parent, seconds) in stats.items():
        group = names.get(pid) or roots.get(pid) or roots.get(parent)
        if group is not None:
            used[pid] = (group, seconds)
    return used


def _infra(pid: int, command: str) -> str | None:
    """The group of one of the infrastructure's root processes (a PostgreSQL backend's
    parent is its root), or of this process's Mailpit."""
    if command.startswith("mailpit"):
        return "mailpit" if _parent(pid) == os.getpid() else None  # not another run's
    group = {"ferretdb": "ferretdb", "postgres": "postgres", "java": "kafka"}.get(
        command.split("-")[0]
    )
    if group is None:
        return None
    with contextlib.suppress(OSError):
        if LOCAL.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            return group
    return None


def _parent(pid: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[1])
    return None


def cpu_used(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds per group between two ``cpu_seconds``; a process gone meanwhile
    (a PostgreSQL backend of a closed connection) is not counted."""
    used: dict[str, float] = {}
    for pid, (group, seconds) in after.items():
        used[group] = used.get(group, 0.0) + seconds - before.get(pid, (group, 0.0))[1]
    return {group: round(seconds, 2) for group, seconds in sorted(used.items())}
