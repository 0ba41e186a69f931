"""The dashboard's front-end files, vendored from npm: the browser never loads a CDN.

The gateway serves htmx, htmx's SSE extension and Alpine.js's CSP build (the one that
needs no ``'unsafe-eval'``) from ``clarion_gateway/dashboard/static/vendor/``. Those
files come from the npm tarballs pinned in ``vendor.lock.json`` beside them, as a
package-lock pins them: a tarball is checked against the ``dist.integrity`` (sha512)
the lock recorded before anything is taken out of it, and the lock records each
written file's sha256 too, so that a test notices, offline, a file edited by hand.

    python -m clarion_devtools.vendor            fetch the pinned tarballs, rewrite the files
    python -m clarion_devtools.vendor --upgrade  first pin the newest release in each
                                                 package's range (integrity from the registry)
    python -m clarion_devtools.vendor --check    compare the files with the lock (offline)

What is wanted (packages, version ranges, which files) is written here; what was
resolved (versions, tarballs, integrity, output hashes) is in the lock.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import BaseModel, ConfigDict

from .localinfra import repo_root

REGISTRY = "https://registry.npmjs.org"
LOCK_NAME = "vendor.lock.json"
FETCH_TIMEOUT_S = 60.0

# @alpinejs/csp's tarball ships no LICENSE file (its package.json says MIT); this is
# LICENSE.md of its repository, github.com/alpinejs/alpine.
ALPINE_LICENSE = """\
# MIT License

Copyright © 2019-2021 Caleb Porzio and contributors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


@dataclass(frozen=True)
class Wanted:
    """One npm package: the release line to follow and the files taken from it.

    ``version_range`` is a version prefix ("2.0" follows 2.0.x, "3" follows 3.x);
    ``files`` maps a path inside the tarball to the file written in the vendor folder;
    ``texts`` are files written as given, for what a tarball lacks (a license).
    """

    name: str
    version_range: str
    files: Mapping[str, str]
    texts: Mapping[str, str] = field(default_factory=dict)


WANTED = (
    Wanted(
        "htmx.org",
        "2.0",
        {"package/dist/htmx.min.js": "htmx.min.js", "package/LICENSE": "htmx.org.LICENSE"},
    ),
    Wanted(
        "htmx-ext-sse",
        "2",
        {
            "package/dist/sse.min.js": "htmx-ext-sse.min.js",
            "package/LICENSE": "htmx-ext-sse.LICENSE",
        },
    ),
    Wanted(
        "@alpinejs/csp",
        "3",
        {"package/dist/cdn.min.js": "alpinejs-csp.min.js"},
        {"alpinejs-csp.LICENSE": ALPINE_LICENSE},
    ),
    # Alpine's build bundles Vue's reactivity package (its dependency "~3.5.40"): only
    # its license is taken.
    Wanted("@vue/reactivity", "3.5", {"package/LICENSE": "vue-reactivity.LICENSE"}),
)


class VendorError(RuntimeError):
    """A tarball or a vendored file is not what the lock says (the message says how)."""


class Pin(BaseModel):
    """One resolved release: where its tarball is and the integrity it must have."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    tarball: str
    integrity: str


class VendorLock(BaseModel):
    model_config = ConfigDict(frozen=True)

    comment: str = "Written by python -m clarion_devtools.vendor; never edit by hand."
    packages: list[Pin]
    # Each vendored file's name and the sha256 (hex) of its bytes.
    outputs: dict[str, str]


Fetch = Callable[[str], bytes]


def vendor_dir() -> Path:
    return repo_root() / "services/api-gateway/src/clarion_gateway/dashboard/static/vendor"


def read_lock(folder: Path) -> VendorLock:
    return VendorLock.model_validate_json((folder / LOCK_NAME).read_text())


def write_lock(folder: Path, lock: VendorLock) -> None:
    (folder / LOCK_NAME).write_text(lock.model_dump_json(indent=2) + "\n")


def sri_sha512(data: bytes) -> str:
    """The Subresource Integrity string npm records as ``dist.integrity``."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def verify_integrity(data: bytes, integrity: str, what: str) -> None:
    """Refuses ``data`` unless one sha512 entry of ``integrity`` matches it.

    An integrity string may hold several space-separated hashes; only sha512 ones are
    trusted (older npm releases also list sha1, which proves nothing).
    """
    expected = [item for item in integrity.split() if item.startswith("sha512-")]
    if not expected:
        raise VendorError(f"{what}: no sha512 integrity recorded ({integrity!r})")
    if sri_sha512(data) not in expected:
        raise VendorError(f"{what}: the tarball's sha512 does not match the lock's integrity")


def extract(data: bytes, members: Mapping[str, str], what: str) -> dict[str, bytes]:
    """The named members of a .tgz, by output name; only those, never a whole tree."""
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member, target in members.items():
            try:
                handle = archive.extractfile(member)
            except KeyError:
                handle = None
            if handle is None:
                raise VendorError(f"{what}: the tarball has no file {member}")
            out[target] = handle.read()
    return out


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _in_range(version: str, version_range: str) -> bool:
    parts = version.split(".")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return False  # pre-releases ("2.0.0-beta1") are never picked
    prefix = version_range.split(".")
    return parts[: len(prefix)] == prefix


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def resolve(wanted: Wanted, packument: Mapping[str, object]) -> Pin:
    """The newest stable release in ``wanted``'s range, from the registry's document."""
    versions = packument.get("versions")
    if not isinstance(versions, dict):
        raise VendorError(f"{wanted.name}: the registry's answer lists no versions")
    matching = [v for v in versions if _in_range(v, wanted.version_range)]
    if not matching:
        raise VendorError(f"{wanted.name}: no release in range {wanted.version_range}")
    version = max(matching, key=_version_key)
    dist = versions[version]["dist"]
    return Pin(
        name=wanted.name, version=version, tarball=dist["tarball"], integrity=dist["integrity"]
    )


def vendor_files(wanted: Wanted, pin: Pin, fetch: Fetch) -> dict[str, bytes]:
    """Every file ``wanted`` names, from the pinned tarball once its integrity holds."""
    what = f"{pin.name}@{pin.version}"
    data = fetch(pin.tarball)
    verify_integrity(data, pin.integrity, what)
    files = extract(data, wanted.files, what)
    files.update({name: text.encode() for name, text in wanted.texts.items()})
    return files


def refresh(folder: Path, pins: list[Pin], fetch: Fetch) -> VendorLock:
    """Writes the vendored files of ``pins`` into ``folder`` and the lock that records them.

    Every tarball is fetched and checked before the first file is written, so that a bad
    tarball leaves the folder as it was; files the lock no longer names are removed.
    """
    by_name = {pin.name: pin for pin in pins}
    missing = [w.name for w in WANTED if w.name not in by_name]
    if missing:
        raise VendorError(f"the lock pins no release of {', '.join(missing)}: run --upgrade")
    files: dict[str, bytes] = {}
    for wanted in WANTED:
        files.update(vendor_files(wanted, by_name[wanted.name], fetch))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():
        if stale.is_file() and stale.name != LOCK_NAME and stale.name not in files:
            stale.unlink()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    lock = VendorLock(
        packages=[by_name[w.name] for w in WANTED],
        outputs={name: sha256_hex(data) for name, data in sorted(files.items())},
    )
    write_lock(folder, lock)
    return lock


def check(folder: Path) -> list[str]:
    """What differs between the vendored files and the lock's hashes (empty: nothing)."""
    lock = read_lock(folder)
    problems = []
    for name, digest in lock.outputs.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_hex(path.read_bytes()) != digest:
            problems.append(f"{name}: its sha256 is not the lock's (edited by hand?)")
    extra = {p.name for p in folder.iterdir() if p.is_file()} - set(lock.outputs) - {LOCK_NAME}
    problems.extend(f"{name}: not in the lock" for name in sorted(extra))
    return problems


def http_fetch(url: str) -> bytes:
    response = httpx.get(url, follow_redirects=True, timeout=FETCH_TIMEOUT_S)
    response.raise_for_status()
    return response.content


def newest_pins(fetch: Fetch) -> list[Pin]:
    """Each wanted package's newest release in its range, as the registry lists it now."""
    pins = []
    for wanted in WANTED:
        url = f"{REGISTRY}/{urllib.parse.quote(wanted.name, safe='@')}"
        pins.append(resolve(wanted, json.loads(fetch(url))))
    return pins


def main(argv: list[str]) -> int:
    folder = vendor_dir()
    try:
        if argv == ["--check"]:
            problems = check(folder)
            for problem in problems:
                print(f"[vendor] {problem}", file=sys.stderr)
            return 1 if problems else 0
        if argv == ["--upgrade"]:
            pins = newest_pins(http_fetch)
        elif argv == []:
            pins = read_lock(folder).packages
        else:
            print("usage: python -m clarion_devtools.vendor [--upgrade | --check]", file=sys.stderr)
            return 2
        lock = refresh(folder, pins, http_fetch)
    except (VendorError, httpx.HTTPError) as exc:
        print(f"[vendor] ERROR: {exc}", file=sys.stderr)
        return 1
    for pin in lock.packages:
        print(f"{pin.name} {pin.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
