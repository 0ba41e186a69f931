"""The supervisor of the local infrastructure that ``deploy/local/infra.sh`` starts.

  python -m clarion_devtools.supervise --infra-script PATH --data-dir DIR --pid-file FILE \\
      [--kafka HOST:PORT] [--postgres HOST:PORT --psql PATH] [--ferretdb HOST:PORT]

``infra.sh up`` starts it detached once everything is ready (log
``<data>/logs/supervisor.log``); ``infra.sh down`` stops it before anything else. Every
interval it asks each component a real question, with a timeout (``clarion_devtools.probe``):

- PostgreSQL: ``select 1`` on the ``ferretdb`` database (psql);
- FerretDB: ``find_one`` on ``clarion_supervisor.heartbeat``, a read FerretDB must pass
  to PostgreSQL (``hello`` and ``ping`` it answers by itself, even when wedged);
- Kafka: a Metadata request naming a broker and an active controller.

After ``CLARION_SUPERVISE_FAILURES`` consecutive failed checks it restarts the component
with ``infra.sh restart <name>`` (the one way things are started; a process that is
alive but not answering is resumed, terminated, and killed after
``CLARION_SUPERVISE_GRACE_S``) and logs one line saying what it detected and that it
restarted it, and one when the component answers again. FerretDB's failures do not
count while PostgreSQL is failing: that restart is PostgreSQL's.

Components named external by the environment (``KAFKA_BOOTSTRAP_SERVERS``,
``MONGODB_URL``), as ``infra.sh`` reads it, are not supervised. The supervisor exits by
itself when its data dir or its pid file is gone, or the pid file names another process
(``infra.sh down`` removes it first).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from . import probe

log = logging.getLogger("clarion.supervise")
# `infra.sh restart` exits with it when the supervisor that asked was stopped meanwhile.
RESTART_SKIPPED = 3


class SuperviseSettings(BaseSettings):
    """``CLARION_SUPERVISE*``; read by the supervisor and (``CLARION_SUPERVISE``) infra.sh."""

    model_config = SettingsConfigDict(env_prefix="CLARION_SUPERVISE_", extra="ignore", frozen=True)

    enabled: bool = Field(
        default=True, validation_alias=AliasChoices("CLARION_SUPERVISE", "enabled")
    )
    interval_s: float = Field(default=5.0, gt=0, description="time between two rounds of checks")
    timeout_s: float = Field(default=5.0, gt=0, description="how long one check may take")
    failures: int = Field(default=3, ge=1, description="consecutive failed checks => restart")
    grace_s: int = Field(default=10, ge=1, description="SIGTERM to SIGKILL on a restart")


# ----------------------------------------------------------------- components
@dataclass(frozen=True)
class Component:
    name: str  # kafka | postgres | ferretdb: the argument of ``infra.sh restart``
    address: str
    what: str  # the question asked, for the log
    depends_on: str | None = None


@dataclass(frozen=True)
class Requested:
    """What ``infra.sh`` manages (its command line), before the environment has a say."""

    kafka: str | None = None
    postgres: str | None = None
    psql: str | None = None
    ferretdb: str | None = None


def supervised(requested: Requested, env: Mapping[str, str]) -> list[Component]:
    """The components to supervise: those infra.sh runs, minus what the environment
    names external (the rule of infra.sh's ``want_kafka`` / ``want_mongo``)."""
    components: list[Component] = []
    if requested.kafka and not env.get("KAFKA_BOOTSTRAP_SERVERS"):
        components.append(Component("kafka", requested.kafka, "a Metadata request"))
    if env.get("MONGODB_URL"):
        return components
    if requested.postgres and requested.psql:
        components.append(Component("postgres", requested.postgres, "select 1 (psql)"))
    if requested.ferretdb:
        depends = "postgres" if requested.postgres and requested.psql else None
        what = f"find_one on {probe.HEARTBEAT_DB}.{probe.HEARTBEAT_COLLECTION}"
        components.append(Component("ferretdb", requested.ferretdb, what, depends))
    return components


# ----------------------------------------------------------------- failure counting
class Verdict(Enum):
    HEALTHY = "healthy"
    RECOVERED = "recovered"  # answers again after failed checks or a restart
    FAILING = "failing"  # failed, not yet often enough to restart
    RESTART = "restart"
    EXCUSED = "excused"  # failed while what it depends on failed: not counted


@dataclass
class Tracker:
    """Consecutive failed checks of one component."""

    threshold: int
    failures: int = 0
    troubled: bool = False  # failed or restarted since it last answered
    last_error: str = ""

    def passed(self) -> Verdict:
        verdict = Verdict.RECOVERED if self.troubled else Verdict.HEALTHY
        self.failures, self.troubled, self.last_error = 0, False, ""
        return verdict

    def failed(self, error: str) -> Verdict:
        self.failures += 1
        self.troubled, self.last_error = True, error
        return Verdict.RESTART if self.failures >= self.threshold else Verdict.FAILING

    def restarted(self) -> None:
        """Counting starts over; the next answer is logged as a recovery."""
        self.failures = 0


def judge(
    components: Sequence[Component],
    errors: Mapping[str, str | None],
    trackers: Mapping[str, Tracker],
) -> list[tuple[Component, Verdict]]:
    """One round: each component's check result (``None`` = answered) into a verdict."""
    verdicts = []
    for component in components:
        error = errors[component.name]
        tracker = trackers[component.name]
        if error is None:
            verdict = tracker.passed()
        elif component.depends_on and errors.get(component.depends_on) is not None:
            verdict = Verdict.EXCUSED
        else:
            verdict = tracker.failed(error)
        verdicts.append((component, verdict))
    return verdicts


# ----------------------------------------------------------------- the loop
Check = Callable[[Component, float], Awaitable[None]]


def real_check(psql: str | None) -> Check:
    async def check(component: Component, timeout_s: float) -> None:
        if component.name == "kafka":
            await probe.check_kafka(component.address, timeout_s)
        elif component.name == "postgres":
            assert psql is not None
            await probe.check_postgres(component.address, psql, timeout_s)
        else:
            await probe.check_ferretdb(component.address, timeout_s)

    return check


@dataclass(frozen=True)
class Watch:
    """What tells the supervisor to exit: its data dir or pid file gone or taken over."""

    data_dir: Path
    pid_file: Path
    pid: int = field(default_factory=os.getpid)

    def exit_reason(self) -> str | None:
        if not self.data_dir.is_dir():
            return f"the data dir {self.data_dir} is gone"
        try:
            text = self.pid_file.read_text().strip()
        except FileNotFoundError:
            return f"the pid file {self.pid_file} is gone (infra.sh down ran)"
        if text != str(self.pid):
            return f"the pid file {self.pid_file} names pid {text or '(none)'}, not {self.pid}"
        return None

    async def wait_for_pid_file(self, timeout_s: float = 5.0) -> None:
        """infra.sh writes the pid file just after starting this process."""
        for _ in range(int(timeout_s / 0.05)):
            if self.exit_reason() is None:
                return
            await asyncio.sleep(0.05)


@dataclass
class Supervisor:
    components: list[Component]
    settings: SuperviseSettings
    watch: Watch
    infra_script: Path
    check: Check
    trackers: dict[str, Tracker] = field(init=False)

    def __post_init__(self) -> None:
        self.trackers = {c.name: Tracker(self.settings.failures) for c in self.components}

    async def _check_one(self, component: Component) -> str | None:
        try:
            await self.check(component, self.settings.timeout_s)
        except Exception as exc:
            return probe.reason(exc, timeout_s=self.settings.timeout_s)
        return None

    async def round(self) -> bool:
        """Check everything once, restart what failed too often; False: time to exit."""
        results = await asyncio.gather(*(self._check_one(c) for c in self.components))
        errors = {c.name: error for c, error in zip(self.components, results, strict=True)}
        for component, verdict in judge(self.components, errors, self.trackers):
            tracker = self.trackers[component.name]
            name = f"{component.name} ({component.address})"
            if verdict is Verdict.RECOVERED:
                log.info("%s: healthy again: %s answered", name, component.what)
            elif verdict is Verdict.FAILING:
                log.warning(
                    "%s: check failed (%d of %d before a restart): %s: %s",
                    name,
                    tracker.failures,
                    self.settings.failures,
                    component.what,
                    tracker.last_error,
                )
            elif verdict is Verdict.RESTART:
                reason = self.watch.exit_reason()
                if reason:
                    log.info("exiting instead of restarting %s: %s", component.name, reason)
                    return False
                await self._restart(component, tracker)
        return True

    async def _restart(self, component: Component, tracker: Tracker) -> None:
        detected = (
            f"{tracker.failures} consecutive checks failed ({component.what}; last: "
            f"{tracker.last_error})"
        )
        log.error("%s: not answering: %s; restarting it", component.name, detected)
        started = time.monotonic()
        env = {
            **os.environ,
            "CLARION_STOP_TIMEOUT": str(self.settings.grace_s),
            "CLARION_SUPERVISOR_PID": str(self.watch.pid),
        }
        # Its progress lines go to this process's stderr, the supervisor's log.
        proc = await asyncio.create_subprocess_exec(
            "bash",
            str(self.infra_script),
            "restart",
            component.name,
            stdin=asyncio.subprocess.DEVNULL,
            env=env,
        )
        code = await proc.wait()
        took = time.monotonic() - started
        tracker.restarted()
        for dependent in self.components:
            if dependent.depends_on == component.name:
                # what it failed before was most likely this restart's cause
                self.trackers[dependent.name].restarted()
        if code == 0:
            log.error(
                "%s: RESTARTED by the supervisor in %.1fs after %s", component.name, took, detected
            )
        elif code == RESTART_SKIPPED:
            log.info("%s: restart skipped: infra.sh down ran meanwhile", component.name)
        else:
            log.error(
                "%s: restart FAILED (infra.sh restart exited %d after %.1fs) after %s; "
                "trying again after %d more failed checks",
                component.name,
                code,
                took,
                detected,
                self.settings.failures,
            )

    async def run(self) -> int:
        await self.watch.wait_for_pid_file()
        names = ", ".join(f"{c.name} {c.address}" for c in self.components)
        log.info(
            "supervising %s (pid %d): every %gs, timeout %gs, restart after %d failed checks",
            names,
            self.watch.pid,
            self.settings.interval_s,
            self.settings.timeout_s,
            self.settings.failures,
        )
        while True:
            reason = self.watch.exit_reason()
            if reason:
                log.info("exiting: %s", reason)
                return 0
            started = time.monotonic()
            if not await self.round():
                return 0
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, self.settings.interval_s - elapsed))


# ----------------------------------------------------------------- entry point
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m clarion_devtools.supervise",
        description="Supervise what deploy/local/infra.sh started; restart it with "
        "'infra.sh restart <name>' when it stops answering.",
    )
    parser.add_argument("--infra-script", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--pid-file", type=Path, required=True)
    parser.add_argument("--kafka", metavar="HOST:PORT")
    parser.add_argument("--postgres", metavar="HOST:PORT")
    parser.add_argument("--psql", metavar="PATH", help="psql of the cluster's bin dir")
    parser.add_argument("--ferretdb", metavar="HOST:PORT")
    return parser


async def _serve(supervisor: Supervisor) -> int:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await supervisor.run()
    except asyncio.CancelledError:
        log.info("stopped (SIGTERM)")
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s supervise: %(message)s"
    )
    probe.quiet_client_logs()
    args = _parser().parse_args(argv)
    try:
        settings = SuperviseSettings()
    except ValidationError as exc:
        log.error("invalid settings: %s", exc)
        return 2
    if not settings.enabled:
        log.info("disabled (CLARION_SUPERVISE=0)")
        return 0
    requested = Requested(args.kafka, args.postgres, args.psql, args.ferretdb)
    components = supervised(requested, os.environ)
    if not components:
        log.info("nothing to supervise (KAFKA_BOOTSTRAP_SERVERS / MONGODB_URL name it all)")
        return 0
    supervisor = Supervisor(
        components=components,
        settings=settings,
        watch=Watch(args.data_dir, args.pid_file),
        infra_script=args.infra_script,
        check=real_check(args.psql),
    )
    return asyncio.run(_serve(supervisor))


if __name__ == "__main__":
    sys.exit(main())
