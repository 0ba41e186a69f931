"""The supervisor of the local infrastructure (``clarion_devtools.supervise``).

Unit tests for its rules (failure counting, what is supervised, when it exits); a
supervisor process against a wedged Kafka stand-in and a recording ``infra.sh``; and a
separate ``infra.sh`` instance (its own data dir and ports; PostgreSQL and FerretDB,
Kafka named external) in which FerretDB is SIGSTOPped, PostgreSQL wedged and killed,
and each is found out by a real query and restarted.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from clarion_devtools import probe
from clarion_devtools.helpers import random_ref, wait_until
from clarion_devtools.localinfra import LocalInfra, repo_root
from clarion_devtools.supervise import (
    RESTART_SKIPPED,
    Component,
    Requested,
    SuperviseSettings,
    Supervisor,
    Tracker,
    Verdict,
    Watch,
    judge,
    supervised,
)

ALL = Requested(
    kafka="127.0.0.1:1", postgres="127.0.0.1:2", psql="/usr/bin/psql", ferretdb="127.0.0.1:3"
)
# Short settings for the supervisors these tests start.
FAST = {
    "CLARION_SUPERVISE": "1",
    "CLARION_SUPERVISE_INTERVAL_S": "0.3",
    "CLARION_SUPERVISE_TIMEOUT_S": "1",
    "CLARION_SUPERVISE_FAILURES": "2",
    "CLARION_SUPERVISE_GRACE_S": "2",
}


# ----------------------------------------------------------------- rules
def test_a_component_is_restarted_after_n_consecutive_failed_checks() -> None:
    tracker = Tracker(threshold=3)
    assert tracker.failed("timeout") is Verdict.FAILING
    assert tracker.failed("timeout") is Verdict.FAILING
    assert tracker.failed("refused") is Verdict.RESTART
    assert tracker.last_error == "refused"
    tracker.restarted()
    assert tracker.failed("timeout") is Verdict.FAILING, "counting starts over after a restart"


def test_an_answer_resets_the_count_and_is_reported_once_as_a_recovery() -> None:
    tracker = Tracker(threshold=2)
    assert tracker.passed() is Verdict.HEALTHY
    assert tracker.failed("timeout") is Verdict.FAILING
    assert tracker.passed() is Verdict.RECOVERED
    assert tracker.failed("timeout") is Verdict.FAILING, "not consecutive: no restart"
    assert tracker.failed("timeout") is Verdict.RESTART
    tracker.restarted()
    assert tracker.passed() is Verdict.RECOVERED
    assert tracker.passed() is Verdict.HEALTHY


def test_ferretdb_failures_do_not_count_while_postgres_fails() -> None:
    components = supervised(ALL, {})
    trackers = {c.name: Tracker(threshold=1) for c in components}
    verdicts = judge(
        components, {"kafka": None, "postgres": "timeout", "ferretdb": "timeout"}, trackers
    )
    assert [(c.name, v) for c, v in verdicts] == [
        ("kafka", Verdict.HEALTHY),
        ("postgres", Verdict.RESTART),
        ("ferretdb", Verdict.EXCUSED),
    ]
    verdicts = judge(components, {"kafka": None, "postgres": None, "ferretdb": "x"}, trackers)
    assert verdicts[2][1] is Verdict.RESTART


def test_what_is_supervised_follows_the_environment_as_infra_sh_reads_it() -> None:
    def names(env: dict[str, str], requested: Requested = ALL) -> list[str]:
        return [c.name for c in supervised(requested, env)]

    assert names({}) == ["kafka", "postgres", "ferretdb"]
    assert names({"KAFKA_BOOTSTRAP_SERVERS": "broker:9092"}) == ["postgres", "ferretdb"]
    assert names({"MONGODB_URL": "mongodb://db/"}) == ["kafka"]
    assert names({"KAFKA_BOOTSTRAP_SERVERS": "b:9092", "MONGODB_URL": "mongodb://db/"}) == []
    assert names({"KAFKA_BOOTSTRAP_SERVERS": ""}) == ["kafka", "postgres", "ferretdb"]
    assert names({}, Requested(ferretdb="127.0.0.1:3")) == ["ferretdb"]
    ferretdb = supervised(ALL, {})[2]
    assert ferretdb == Component(
        "ferretdb", "127.0.0.1:3", "find_one on clarion_supervisor.heartbeat", "postgres"
    )


def test_settings_have_documented_defaults_and_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [*FAST, "CLARION_SUPERVISE"]:
        monkeypatch.delenv(name, raising=False)
    defaults = SuperviseSettings()
    assert (defaults.enabled, defaults.interval_s, defaults.timeout_s) == (True, 5.0, 5.0)
    assert (defaults.failures, defaults.grace_s) == (3, 10)
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CLARION_SUPERVISE", "0")
    fast = SuperviseSettings()
    assert (fast.enabled, fast.interval_s, fast.timeout_s, fast.failures, fast.grace_s) == (
        False,
        0.3,
        1.0,
        2,
        2,
    )


def test_the_supervisor_knows_when_to_exit(tmp_path: Path) -> None:
    pid_file = tmp_path / "supervisor.pid"
    watch = Watch(tmp_path, pid_file, pid=4242)
    assert "pid file" in (watch.exit_reason() or "")
    pid_file.write_text("4242\n")
    assert watch.exit_reason() is None
    pid_file.write_text("999\n")
    assert "names pid 999" in (watch.exit_reason() or "")
    assert "data dir" in (Watch(tmp_path / "gone", pid_file, pid=4242).exit_reason() or "")


async def test_a_postgres_restart_clears_what_ferretdb_failed_meanwhile(tmp_path: Path) -> None:
    (tmp_path / "infra.sh").write_text('echo "$2" >>"$(dirname "$0")/restarted"\n')
    (tmp_path / "supervisor.pid").write_text(f"{os.getpid()}\n")
    # rounds of (postgres answers, ferretdb answers): ferretdb fails first alone (the
    # wedge began between two checks), then with postgres, then answers after it
    rounds = iter([(True, False), (False, False), (False, False), (True, True)])
    current: dict[str, bool] = {}

    async def check(component: Component, timeout_s: float) -> None:
        if not current[component.name]:
            raise TimeoutError

    supervisor = Supervisor(
        components=supervised(Requested(postgres="a:1", psql="psql", ferretdb="a:2"), {}),
        settings=SuperviseSettings(failures=2),
        watch=Watch(tmp_path, tmp_path / "supervisor.pid"),
        infra_script=tmp_path / "infra.sh",
        check=check,
    )
    for postgres, ferretdb in rounds:
        current.update(postgres=postgres, ferretdb=ferretdb)
        assert await supervisor.round()
    assert (tmp_path / "restarted").read_text() == "postgres\n"
    assert supervisor.trackers["ferretdb"].failures == 0


def test_a_restart_asked_by_a_supervisor_that_down_stopped_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "pids").mkdir()
    (tmp_path / "pids" / "supervisor.pid").write_text("1\n")
    env = os.environ | {"CLARION_DATA_DIR": str(tmp_path), "CLARION_SUPERVISOR_PID": "2"}
    script = repo_root() / "deploy" / "local" / "infra.sh"
    done = subprocess.run(
        ["bash", str(script), "restart", "ferretdb"], env=env, capture_output=True, text=True
    )
    assert done.returncode == RESTART_SKIPPED, done.stderr
    assert "skipped, the supervisor that asked for it (pid 2) was stopped" in done.stderr


# ----------------------------------------------------------------- a supervisor process
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class SupervisorProcess:
    proc: subprocess.Popen[bytes]
    log: Path
    record: Path
    pid_file: Path

    def text(self) -> str:
        return self.log.read_text()


def _start_supervisor(tmp_path: Path, data_dir: Path, *components: str) -> SupervisorProcess:
    """A supervisor whose ``infra.sh`` only records what it was asked to do."""
    fake_infra, record = tmp_path / "infra.sh", tmp_path / "restarts.txt"
    fake_infra.write_text(
        'printf "%s %s grace=%s asked_by=%s\\n" "$1" "$2" "$CLARION_STOP_TIMEOUT" '
        '"$CLARION_SUPERVISOR_PID" >>"$FAKE_INFRA_RECORD"\n'
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URL")
    }
    env |= FAST | {"FAKE_INFRA_RECORD": str(record)}
    pid_file, log = tmp_path / "supervisor.pid", tmp_path / "supervisor.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "clarion_devtools.supervise"),
                *("--infra-script", str(fake_infra), "--data-dir", str(data_dir)),
                *("--pid-file", str(pid_file), *components),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    pid_file.write_text(f"{proc.pid}\n")
    return SupervisorProcess(proc, log, record, pid_file)


async def _exited(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is not None


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """After a failed assertion: leave no supervisor behind."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


async def test_a_wedged_kafka_is_restarted_through_infra_sh_and_down_ends_the_supervisor(
    tmp_path: Path,
) -> None:
    # A listener that never accepts: connections complete in the kernel's backlog and
    # a Metadata request is never answered, as with a SIGSTOPped broker.
    with socket.socket() as wedged:
        wedged.bind(("127.0.0.1", 0))
        wedged.listen(64)
        address = f"127.0.0.1:{wedged.getsockname()[1]}"
        sup = _start_supervisor(tmp_path, tmp_path, "--kafka", address)
        try:
            await wait_until(
                lambda: asyncio.sleep(0, "RESTARTED" in sup.text()), 20, what="a restart"
            )
            # what `infra.sh down` does first: the pid file goes, the supervisor exits
            sup.pid_file.unlink()
            await wait_until(lambda: _exited(sup.proc), 10, what="the supervisor to exit")
        finally:
            _kill(sup.proc)
    log = sup.text()
    assert sup.proc.returncode == 0, log
    assert f"kafka ({address}): check failed (1 of 2 before a restart)" in log
    assert re.search(
        r"kafka: RESTARTED by the supervisor in [\d.]+s after 2 consecutive checks failed "
        r"\(a Metadata request; last: TimeoutError: no answer within 1s\)",
        log,
    ), log
    assert f"restart kafka grace=2 asked_by={sup.proc.pid}" in sup.record.read_text()
    assert "exiting: the pid file" in log


async def test_the_supervisor_exits_when_its_data_dir_is_gone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    sup = _start_supervisor(tmp_path, data, "--ferretdb", f"127.0.0.1:{_free_port()}")
    try:
        await wait_until(lambda: asyncio.sleep(0, "supervising" in sup.text()), 10, what="start")
        data.rmdir()
        await wait_until(lambda: _exited(sup.proc), 10, what="the supervisor to exit")
    finally:
        _kill(sup.proc)
    assert sup.proc.returncode == 0
    assert f"exiting: the data dir {data} is gone" in sup.text()


@pytest.mark.integration
async def test_the_kafka_check_asks_a_real_broker() -> None:
    await probe.check_kafka(os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"), 5)
    with pytest.raises(Exception, match=r"[Cc]onnect|bootstrap"):
        await probe.check_kafka(f"127.0.0.1:{_free_port()}", 2)


# ----------------------------------------------------------------- an infra.sh instance
def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


@dataclass
class Instance:
    """``infra.sh`` with a data dir and ports of its own: PostgreSQL, FerretDB and the
    supervisor. Kafka is named external, so none is started (nor supervised)."""

    infra: LocalInfra
    data_dir: Path
    mongo_port: int

    @property
    def mongo_addr(self) -> str:
        return f"127.0.0.1:{self.mongo_port}"

    @property
    def mongo_url(self) -> str:
        return f"mongodb://{self.mongo_addr}/"

    def sh(self, *command: str) -> subprocess.CompletedProcess[str]:
        script = repo_root() / "deploy" / "local" / "infra.sh"
        return subprocess.run(
            ["bash", str(script), *command],
            env=self.infra.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def pid(self, name: str) -> int:
        return int((self.data_dir / "pids" / f"{name}.pid").read_text())

    @functools.cached_property
    def pg_data(self) -> Path:
        status = self.sh("status").stdout
        found = re.search(r"^postgres +ready +\S+ data=(\S+)$", status, re.M)
        assert found, status
        return Path(found[1])

    def pg_processes(self) -> list[int]:
        """The cluster's processes (they all run in its data dir, as infra.sh finds them)."""
        data = self.pg_data.resolve()
        pids = []
        for proc in Path("/proc").iterdir():
            try:
                if (proc / "comm").read_text().strip() == "postgres" and (
                    proc / "cwd"
                ).resolve() == data:
                    pids.append(int(proc.name))
            except OSError:
                continue
        return pids

    def log(self) -> str:
        return (self.data_dir / "logs" / "supervisor.log").read_text()

    async def logged(self, text: str, timeout_s: float = 25) -> None:
        await wait_until(
            lambda: asyncio.sleep(0, text in self.log()), timeout_s, 0.2, what=repr(text)
        )


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    data_dir = tmp_path_factory.mktemp("infra")
    ports = {
        "CLARION_PG_PORT": _free_port(),
        "CLARION_MONGO_PORT": _free_port(),
        "CLARION_KAFKA_PORT": _free_port(),
        "CLARION_KAFKA_CONTROLLER_PORT": _free_port(),
    }
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URL"}
    env |= FAST | {k: str(v) for k, v in ports.items()} | {"CLARION_DATA_DIR": str(data_dir)}
    # This instance's Kafka is "external": infra.sh leaves it alone; the check and the
    # restart through infra.sh are shown above against a wedged stand-in.
    env["KAFKA_BOOTSTRAP_SERVERS"] = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    infra = LocalInfra(env=env)
    try:
        infra.up()
        yield Instance(infra, data_dir, ports["CLARION_MONGO_PORT"])
    finally:
        infra.clean()


async def _real_query(mongo_url: str) -> bool:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_url, directConnection=True, timeoutMS=2000, serverSelectionTimeoutMS=2000
    )
    try:
        ref = random_ref()
        await client.supervise_test.items.insert_one({"_id": ref})
        return await client.supervise_test.items.find_one({"_id": ref}) is not None
    except PyMongoError:
        return False
    finally:
        await client.close()


@pytest.mark.integration
async def test_a_sigstopped_ferretdb_is_found_out_by_a_real_query_and_restarted(
    instance: Instance,
) -> None:
    assert await _real_query(instance.mongo_url)
    status = instance.sh("status").stdout
    assert re.search(r"^kafka +external", status, re.M), status
    assert re.search(r"^supervisor +running +pid=\d+", status, re.M), status
    wedged = instance.pid("ferretdb")
    os.kill(wedged, signal.SIGSTOP)  # alive, port open, answering nothing: finding 8
    try:
        await instance.logged("ferretdb: RESTARTED by the supervisor")
        await wait_until(lambda: _real_query(instance.mongo_url), 20, 0.2, what="an answer")
    finally:
        if _alive(wedged):
            os.kill(wedged, signal.SIGCONT)
    log = instance.log()
    assert re.search(
        r"ferretdb: RESTARTED by the supervisor in [\d.]+s after 2 consecutive checks failed "
        r"\(find_one on clarion_supervisor\.heartbeat; last: .*no answer within 1s",
        log,
    ), log
    assert re.search(r"ferretdb \(127\.0\.0\.1:\d+\): healthy again", log), log
    assert not _alive(wedged)
    assert instance.pid("ferretdb") != wedged


@pytest.mark.integration
async def test_a_wedged_postgres_is_restarted_and_ferretdb_is_not_blamed(
    instance: Instance,
) -> None:
    stopped = instance.pg_processes()
    assert stopped
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        # FerretDB still answers hello by itself; only a real read shows the wedge.
        await probe.check_mongo_hello(instance.mongo_addr, 2)
        with pytest.raises(Exception, match=r"no answer|timed out"):
            await probe.check_ferretdb(instance.mongo_addr, 1)
        await instance.logged("postgres: RESTARTED by the supervisor")
        await wait_until(lambda: _real_query(instance.mongo_url), 20, 0.2, what="an answer")
    finally:
        for pid in stopped:
            if _alive(pid):
                os.kill(pid, signal.SIGCONT)
    assert not any(_alive(pid) for pid in stopped)


@pytest.mark.integration
async def test_a_killed_postgres_is_restarted(instance: Instance) -> None:
    before = instance.log().count("postgres: RESTARTED")
    postmaster = int((instance.pg_data / "postmaster.pid").read_text().split()[0])
    os.kill(postmaster, signal.SIGKILL)
    await wait_until(
        lambda: asyncio.sleep(0, instance.log().count("postgres: RESTARTED") > before),
        25,
        0.2,
        what="a second postgres restart",
    )
    assert instance.sh("status").returncode == 0
    await wait_until(lambda: _real_query(instance.mongo_url), 20, 0.2, what="an answer")


@pytest.mark.integration
async def test_up_starts_the_supervisor_when_the_infrastructure_runs_without_one(
    instance: Instance,
) -> None:
    old = instance.pid("supervisor")
    os.killpg(old, signal.SIGKILL)
    await wait_until(lambda: asyncio.sleep(0, not _alive(old)), 10, 0.05, what="its end")
    up = instance.sh("up")
    assert up.returncode == 0, up.stderr
    assert "supervisor: starting" in up.stderr
    new = instance.pid("supervisor")
    assert new != old
    assert _alive(new)
    await instance.logged(f"(pid {new}): every 0.3s")
    assert instance.sh("up").stderr.count(f"supervisor: already running (pid {new})") == 1


@pytest.mark.integration
def test_down_stops_the_supervisor_before_anything_it_supervises(instance: Instance) -> None:
    supervisor = instance.pid("supervisor")
    down = instance.sh("down")
    assert down.returncode == 0, down.stderr
    order = [line for line in down.stderr.splitlines() if "stopping" in line]
    assert "supervisor" in order[0], down.stderr
    assert not _alive(supervisor)
    # several of its intervals later, nothing came back
    time.sleep(1.5)
    status = instance.sh("status").stdout
    for name in ("postgres", "ferretdb", "supervisor"):
        assert re.search(rf"^{name} +stopped", status, re.M), status
    assert "stopped (SIGTERM)" in instance.log()
