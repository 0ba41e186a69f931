"""A real SMTP server for the email tests and the benchmark: Mailpit, built from its Go module.

Email delivery is tested against it, not against a mock: it accepts SMTP (plain,
STARTTLS or implicit TLS, with AUTH), keeps what it received, and answers a REST API
(``/api/v1``) the tests read it back through. Its "chaos" triggers make the SMTP
server refuse senders, recipients or logins with a chosen code for as long as the
tests want. Built as MinIO is (``clarion_devtools.s3server``): ``go install`` of one
pinned version, once, into the cache that clones share (``$CLARION_CACHE_DIR``,
default ``~/.cache/clarion``), under a lock, with the Go module and build caches of
its own under that cache; ``make test`` runs ``python -m clarion_devtools.smtpserver
install`` first; a fixture that finds no binary fails and says so.

    python -m clarion_devtools.smtpserver install   build (if needed), print the binary
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import httpx

from .mailpit_api import Chaos, MailpitAPI
from .s3server import cache_dir, free_port

MODULE = "github.com/axllent/mailpit"
VERSION = "v1.33.1"
BUILD_TIMEOUT_S = 1800.0
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0

# "none": plain SMTP; "starttls": the server refuses mail before STARTTLS; "implicit":
# TLS from the first byte (SMTPS).
TLSMode = Literal["none", "starttls", "implicit"]


class SMTPServerUnavailable(RuntimeError):
    """The server could not be built or started (the message says why)."""


def install_dir() -> Path:
    return cache_dir() / "mailpit"


def binary_path() -> Path:
    return install_dir() / f"mailpit-{VERSION}"


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
    """The Mailpit binary, built first if the cache has none."""
    binary = binary_path()
    if binary.is_file():
        return binary
    with _locked(binary.parent / "install.lock"):
        if binary.is_file():  # built by another process meanwhile
            return binary
        _build(binary)
    return binary


def _go_env(build: str) -> dict[str, str]:
    """Go's caches under ours: the build neither needs nor fills the user's ~/go."""
    root = install_dir() / "go"
    return {
        **os.environ,
        "GOBIN": build,
        "GOPATH": str(root),
        "GOMODCACHE": str(root / "pkg" / "mod"),
        "GOCACHE": str(root / "cache"),
        # -modcacherw: the module cache stays deletable with a plain rm -r.
        "GOFLAGS": "-buildvcs=false -modcacherw",
        "CGO_ENABLED": "0",
    }


def _build(binary: Path) -> None:
    go = shutil.which("go")
    if go is None:
        raise SMTPServerUnavailable(
            "go not found on PATH: the tests' SMTP server (Mailpit) is built with the Go "
            "toolchain; install Go (as FerretDB and MinIO need it too)"
        )
    log = binary.parent / "build.log"
    print(f"[smtpserver] building Mailpit {VERSION} (once; log {log})", file=sys.stderr)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=binary.parent) as build:
        with log.open("w") as out:
            try:
                result = subprocess.run(
                    [go, "install", "-trimpath", f"{MODULE}@{VERSION}"],
                    env=_go_env(build),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=BUILD_TIMEOUT_S,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise SMTPServerUnavailable(_tail(log, "building Mailpit timed out")) from None
        built = Path(build) / "mailpit"
        if result.returncode != 0 or not built.is_file():
            raise SMTPServerUnavailable(
                _tail(log, f"building Mailpit failed ({result.returncode})")
            )
        built.replace(binary)
    took = time.monotonic() - started
    print(f"[smtpserver] built {binary} in {took:.0f}s", file=sys.stderr)


def _tail(log: Path, what: str, lines: int = 30) -> str:
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    return "\n".join([f"{what}; last lines of {log}:", *text[-lines:]])


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 and localhost, made now with ``openssl``;
    a client trusts it through ``ssl.create_default_context(cafile=cert)``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SMTPServerUnavailable("openssl not found on PATH: it makes the test certificate")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    command = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt"]
    command += ["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=localhost"]
    command += ["-keyout", str(key), "-out", str(cert)]
    for extension in (
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "basicConstraints=critical,CA:TRUE",
        "keyUsage=critical,digitalSignature,keyCertSign",
        "extendedKeyUsage=serverAuth",
    ):
        command += ["-addext", extension]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SMTPServerUnavailable(f"openssl could not make a certificate: {result.stderr}")
    return cert, key


class Mailpit(MailpitAPI):
    """One Mailpit process on free loopback ports: SMTP at ``host``/``smtp_port``, its
    REST API at ``api_url``; messages in a database file under ``data_dir``, kept in
    no other place, so every instance starts empty. Chaos is enabled (no trigger set).
    Nothing is pruned or merged: a message sent twice is there twice (exactly-once
    checks count on it), and Mailpit gives one without a Message-ID its own.

    ``tls`` needs a certificate: one is made under ``data_dir`` (``cert`` is its path,
    ``ssl_context()`` a client context that trusts it). ``credentials`` (user,
    password) makes AUTH required and checked; ``accept_any_auth`` offers AUTH and
    takes any login, or none. Without TLS, AUTH is offered in the clear.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        data_dir: Path,
        *,
        tls: TLSMode = "none",
        credentials: tuple[str, str] | None = None,
        accept_any_auth: bool = False,
        binary: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.tls: TLSMode = tls
        self.credentials = credentials
        self.accept_any_auth = accept_any_auth
        self.binary = binary or binary_path()
        self.smtp_port = 0
        self.cert: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        super().__init__("")

    @property
    def log(self) -> Path:
        return self.data_dir / "mailpit.log"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate (and nothing else)."""
        if self.cert is None:
            raise RuntimeError("this Mailpit was started without TLS")
        return ssl.create_default_context(cafile=str(self.cert))

    def start(self) -> Mailpit:
        if not self.binary.is_file():
            raise SMTPServerUnavailable(
                f"no Mailpit binary at {self.binary}: run `make smtp-install` "
                "(python -m clarion_devtools.smtpserver install) first"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.smtp_port, http_port = free_port(), free_port()
        self.api_url = f"http://{self.host}:{http_port}"
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                self._command(http_port), env=self._env(), stdout=out, stderr=subprocess.STDOUT
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _command(self, http_port: int) -> list[str]:
        database = self.data_dir / f"mailpit-{time.monotonic_ns()}.db"
        command = [str(self.binary), "--database", str(database), "--quiet"]
        command += ["--listen", f"{self.host}:{http_port}"]
        command += ["--smtp", f"{self.host}:{self.smtp_port}"]
        # No pruning (default: the newest 500), no lookups, no update check, room for
        # batches: a test counts everything it sent.
        command += ["--max", "0", "--smtp-disable-rdns", "--disable-version-check"]
        command += ["--smtp-max-recipients", "1000", "--enable-chaos"]
        if self.tls != "none":
            self.cert, key = self_signed_cert(self.data_dir)
            command += ["--smtp-tls-cert", str(self.cert), "--smtp-tls-key", str(key)]
            flag = "--smtp-require-tls" if self.tls == "implicit" else "--smtp-require-starttls"
            command.append(flag)
        if self.accept_any_auth:
            command.append("--smtp-auth-accept-any")
        if (self.credentials or self.accept_any_auth) and self.tls == "none":
            command.append("--smtp-auth-allow-insecure")
        return command

    def _env(self) -> dict[str, str]:
        # Mailpit reads MP_* variables as flags: none of the caller's leak in.
        env = {name: value for name, value in os.environ.items() if not name.startswith("MP_")}
        if self.credentials is not None:
            user, password = self.credentials
            if any(c in user + password for c in ": \t"):
                raise ValueError("Mailpit credentials hold no colon or white space")
            env["MP_SMTP_AUTH"] = f"{user}:{password}"
        return env

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._answers():
            if self._process.poll() is not None:
                raise SMTPServerUnavailable(
                    _tail(self.log, f"Mailpit exited ({self._process.returncode})")
                )
            if time.monotonic() > deadline:
                raise SMTPServerUnavailable(
                    _tail(self.log, f"Mailpit not ready after {READY_TIMEOUT_S}s")
                )
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            if httpx.get(f"{self.api_url}/readyz", timeout=2).status_code != 200:
                return False
            with socket.create_connection((self.host, self.smtp_port), timeout=2):
                return True
        except (httpx.HTTPError, OSError):
            return False

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Mailpit:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


__all__ = ["Chaos", "Mailpit", "SMTPServerUnavailable", "TLSMode", "install"]


def main(argv: list[str]) -> int:
    if argv != ["install"]:
        print("usage: python -m clarion_devtools.smtpserver install", file=sys.stderr)
        return 2
    try:
        print(install())
    except SMTPServerUnavailable as exc:
        print(f"[smtpserver] ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
