"""The embedded Kafka and FerretDB of ``deploy/local/infra.sh``, driven from Python.

Used by ``make run`` (``clarion_devtools.devstack``) and by the test fixtures. The script
itself respects ``KAFKA_BOOTSTRAP_SERVERS`` / ``MONGODB_URL``: what they name is used,
not started. ``up`` also starts the script's supervisor (``clarion_devtools.supervise``),
which restarts a component that stops answering; ``down`` stops it first.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class InfraAddresses:
    kafka_bootstrap_servers: str
    mongodb_url: str
    source: str  # env | testcontainers | local


def repo_root() -> Path:
    env = os.environ.get("CLARION_REPO_ROOT")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "Makefile").exists() and (parent / "deploy").is_dir():
            return parent
    raise RuntimeError("cannot find the Clarion repository root; set CLARION_REPO_ROOT")


class LocalInfra:
    """``env``: the script's whole environment (default: this process's), e.g. another
    ``CLARION_DATA_DIR`` and ports for an instance of its own."""

    def __init__(self, script: Path | None = None, env: Mapping[str, str] | None = None) -> None:
        self.script = script or repo_root() / "deploy" / "local" / "infra.sh"
        self.env = dict(env) if env is not None else None

    def _run(self, *command: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(self.script), *command],
            check=False,
            capture_output=capture,
            text=True,
            env=self.env,
        )

    def is_ready(self) -> bool:
        """Everything the script would start is running and ready."""
        return self._run("status", capture=True).returncode == 0

    def up(self) -> InfraAddresses:
        """Start what is not running (idempotent), wait until ready, return addresses."""
        if self._run("up", capture=False).returncode != 0:
            raise RuntimeError(f"{self.script} up failed (see the messages above)")
        out = self._run("env", capture=True)
        values: dict[str, str] = {}
        for line in out.stdout.splitlines():
            line = line.removeprefix("export ").strip()
            if "=" in line:
                name, value = line.split("=", 1)
                values[name] = value.strip("'\"")
        return InfraAddresses(values["KAFKA_BOOTSTRAP_SERVERS"], values["MONGODB_URL"], "local")

    def status(self) -> subprocess.CompletedProcess[str]:
        return self._run("status", capture=True)

    def restart(self, component: str) -> None:
        """Stop one of kafka, postgres, ferretdb (also when wedged) and start it again."""
        if self._run("restart", component).returncode != 0:
            raise RuntimeError(f"{self.script} restart {component} failed")

    def down(self) -> None:
        self._run("down")

    def clean(self) -> None:
        """``down``, then delete the data dir."""
        self._run("clean")
