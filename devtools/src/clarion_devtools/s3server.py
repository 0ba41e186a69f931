"""A real S3-compatible server for the tests: MinIO, built from its Go module.

The gateway's object store path (``clarion_gateway.campaigns.objects_s3``) is tested
against it, not against a mock. There is no Docker here, so it is built as FerretDB is
(``deploy/local/infra.sh``): ``go install`` of one pinned version, once, into the cache
that clones share (``$CLARION_CACHE_DIR``, default ``~/.cache/clarion``), under a lock;
every later call finds the binary. ``make test`` runs ``python -m
clarion_devtools.s3server install`` first (a build takes minutes, longer than a test's
timeout); a fixture that finds no binary builds it too, or fails with the build's error.

    python -m clarion_devtools.s3server install   build (if needed), print the binary

MinIO's module has no ``replace`` directive, so a plain ``go install`` of it builds.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

MODULE = "github.com/minio/minio"
# The newest MinIO the Go module proxy served (RELEASE tags are not semver: a
# pseudo-version of the commit of 2026-02-12).
VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
BUILD_TIMEOUT_S = 1800.0


class S3ServerUnavailable(RuntimeError):
    """The server could not be built or started (the message says why)."""


def cache_dir() -> Path:
    """The cache ``deploy/local/infra.sh`` keeps FerretDB in."""
    env = os.environ.get("CLARION_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "clarion"


def binary_path() -> Path:
    return cache_dir() / "minio" / f"minio-{VERSION}"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One build at a time across processes and clones (the cache is shared)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install() -> Path:
    """The MinIO binary, built first if the cache has none."""
    binary = binary_path()
    if binary.is_file():
        return binary
    with _locked(binary.parent / "install.lock"):
        if binary.is_file():  # built by another process meanwhile
            return binary
        _build(binary)
    return binary


def _build(binary: Path) -> None:
    go = shutil.which("go")
    if go is None:
        raise S3ServerUnavailable(
            "go not found on PATH: the tests' S3 server (MinIO) is built with the Go "
            "toolchain; install Go (as FerretDB needs it too)"
        )
    log = binary.parent / "build.log"
    print(f"[s3server] building MinIO {VERSION} (minutes, once; log {log})", file=sys.stderr)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=binary.parent) as build:
        env = {**os.environ, "GOBIN": build, "GOFLAGS": "-buildvcs=false"}
        with log.open("w") as out:
            try:
                result = subprocess.run(
                    [go, "install", "-trimpath", f"{MODULE}@{VERSION}"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=BUILD_TIMEOUT_S,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise S3ServerUnavailable(_tail(log, "building MinIO timed out")) from None
        built = Path(build) / "minio"
        if result.returncode != 0 or not built.is_file():
            raise S3ServerUnavailable(_tail(log, f"building MinIO failed ({result.returncode})"))
        built.replace(binary)
    took = time.monotonic() - started
    print(f"[s3server] built {binary} in {took:.0f}s", file=sys.stderr)


def _tail(log: Path, what: str, lines: int = 30) -> str:
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    return "\n".join([f"{what}; last lines of {log}:", *text[-lines:]])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class S3Server:
    """A running server: its S3 API and the root credentials it was started with."""

    endpoint_url: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"


@contextmanager
def running(data_dir: Path, binary: Path | None = None) -> Iterator[S3Server]:
    """A MinIO on free loopback ports storing into ``data_dir``; stopped at the end."""
    binary = binary or install()
    data_dir.mkdir(parents=True, exist_ok=True)
    port, console = free_port(), free_port()
    server = S3Server(f"http://127.0.0.1:{port}", "clarion-test", secrets.token_hex(16))
    env = {
        **os.environ,
        "MINIO_ROOT_USER": server.access_key,
        "MINIO_ROOT_PASSWORD": server.secret_key,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
    }
    log = data_dir.parent / f"{data_dir.name}.log"
    command = [str(binary), "server", str(data_dir), "--address", f"127.0.0.1:{port}"]
    command += ["--console-address", f"127.0.0.1:{console}", "--quiet"]
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(process, server, log)
        yield server
    finally:
        _stop(process)


def _wait_ready(process: subprocess.Popen[bytes], server: S3Server, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    url = f"{server.endpoint_url}/minio/health/live"
    while True:
        if process.poll() is not None:
            raise S3ServerUnavailable(_tail(log, f"MinIO exited ({process.returncode})"))
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise S3ServerUnavailable(_tail(log, f"MinIO not ready after {READY_TIMEOUT_S}s"))
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv: list[str]) -> int:
    if argv != ["install"]:
        print("usage: python -m clarion_devtools.s3server install", file=sys.stderr)
        return 2
    try:
        print(install())
    except S3ServerUnavailable as exc:
        print(f"[s3server] ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
