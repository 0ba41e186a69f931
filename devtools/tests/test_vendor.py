"""The vendored front-end files: they are what the lock says, and a bad tarball is refused.

Offline: the committed files are checked against the committed lock, and the fetching
path runs on small tarballs built here.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest

from clarion_devtools import vendor
from clarion_devtools.vendor import Pin, VendorError


def _tarball(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _fake_registry() -> dict[str, bytes]:
    """One small tarball per wanted package, holding the files it is asked for."""
    return {
        f"https://registry.test/{wanted.name}.tgz": _tarball(
            {member: f"{wanted.name} {member}\n".encode() for member in wanted.files}
        )
        for wanted in vendor.WANTED
    }


def _pins(tarballs: dict[str, bytes]) -> list[Pin]:
    return [
        Pin(
            name=wanted.name,
            version="1.0.0",
            tarball=f"https://registry.test/{wanted.name}.tgz",
            integrity=vendor.sri_sha512(tarballs[f"https://registry.test/{wanted.name}.tgz"]),
        )
        for wanted in vendor.WANTED
    ]


def test_the_vendored_files_are_the_ones_the_lock_records() -> None:
    folder = vendor.vendor_dir()
    lock = vendor.read_lock(folder)
    assert [pin.name for pin in lock.packages] == [w.name for w in vendor.WANTED]
    assert {"htmx.min.js", "htmx-ext-sse.min.js", "alpinejs-csp.min.js"} <= set(lock.outputs)
    assert all(name in lock.outputs for w in vendor.WANTED for name in w.files.values())
    assert vendor.check(folder) == []


def test_a_hand_edited_or_unknown_file_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "vendor"
    shutil.copytree(vendor.vendor_dir(), folder)
    with (folder / "htmx.min.js").open("a") as handle:
        handle.write("/* patched */")
    (folder / "extra.js").write_text("")
    (folder / "htmx-ext-sse.min.js").unlink()
    assert vendor.check(folder) == [
        "htmx-ext-sse.min.js: missing",
        "htmx.min.js: its sha256 is not the lock's (edited by hand?)",
        "extra.js: not in the lock",
    ]


def test_refresh_writes_the_named_files_and_records_their_hashes(tmp_path: Path) -> None:
    tarballs = _fake_registry()
    (tmp_path / "stale.js").write_text("left over from an older release")
    lock = vendor.refresh(tmp_path, _pins(tarballs), tarballs.__getitem__)
    assert (tmp_path / "htmx.min.js").read_text() == "htmx.org package/dist/htmx.min.js\n"
    assert (tmp_path / "alpinejs-csp.LICENSE").read_text() == vendor.ALPINE_LICENSE
    assert not (tmp_path / "stale.js").exists()
    assert vendor.read_lock(tmp_path) == lock
    assert vendor.check(tmp_path) == []


def test_a_tampered_tarball_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    tarballs = _fake_registry()
    pins = _pins(tarballs)
    url = "https://registry.test/@alpinejs/csp.tgz"
    tarballs[url] = _tarball({"package/dist/cdn.min.js": b"fetch('https://evil.test')"})
    with pytest.raises(VendorError, match=r"@alpinejs/csp@1\.0\.0: the tarball's sha512"):
        vendor.refresh(tmp_path, pins, tarballs.__getitem__)
    assert list(tmp_path.iterdir()) == []


def test_integrity_needs_a_matching_sha512() -> None:
    data = b"tarball bytes"
    vendor.verify_integrity(data, f"sha1-AAAA {vendor.sri_sha512(data)}", "pkg")
    with pytest.raises(VendorError, match="no sha512"):
        vendor.verify_integrity(data, "sha1-AAAA", "pkg")
    with pytest.raises(VendorError, match="does not match"):
        vendor.verify_integrity(data + b"!", vendor.sri_sha512(data), "pkg")


def test_a_missing_member_is_an_error_not_an_empty_file() -> None:
    data = _tarball({"package/LICENSE": b"MIT"})
    with pytest.raises(VendorError, match=r"no file package/dist/htmx\.min\.js"):
        vendor.extract(data, {"package/dist/htmx.min.js": "htmx.min.js"}, "htmx.org@2")


def test_upgrade_picks_the_newest_stable_release_in_range() -> None:
    def release(version: str) -> dict[str, object]:
        return {"dist": {"tarball": f"https://registry.test/{version}.tgz", "integrity": "x"}}

    versions = ["2.0.2", "2.0.10", "2.0.9", "2.1.0", "2.0.12-beta.1", "4.0.1"]
    packument = {"versions": {version: release(version) for version in versions}}
    pin = vendor.resolve(vendor.Wanted("htmx.org", "2.0", {}), packument)
    assert (pin.version, pin.tarball) == ("2.0.10", "https://registry.test/2.0.10.tgz")
    with pytest.raises(VendorError, match="no release in range 3"):
        vendor.resolve(vendor.Wanted("htmx.org", "3", {}), packument)
