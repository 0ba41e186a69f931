"""The size rules of docs/SERVICE_SHAPE.md, and the wall between run time and dev tooling."""

from __future__ import annotations

import re
from pathlib import Path

from clarion_devtools.localinfra import repo_root
from clarion_devtools.shape import MAX_FILE_LINES, MAX_FUNCTION_LINES, check_file, sources


def _function(name: str, body_lines: int, mark: str = "") -> str:
    body = "".join(f"    x{i} = {i}\n" for i in range(body_lines))
    return f"def {name}() -> None:{mark}\n{body}"


def test_a_long_function_needs_a_reason() -> None:
    long_body = MAX_FUNCTION_LINES  # with its def line: one over the limit
    text = _function("short", 3) + _function("long", long_body)
    [finding] = check_file(Path("x.py"), text)
    assert "function long is" in finding.what
    assert finding.line == 5

    reasoned = _function("long", long_body, mark="  # long: one table, read top to bottom")
    assert check_file(Path("x.py"), reasoned) == []


def test_a_long_file_is_reported() -> None:
    text = "x = 1\n" * (MAX_FILE_LINES + 1)
    [finding] = check_file(Path("x.py"), text)
    assert f"{MAX_FILE_LINES + 1} lines" in finding.what


def test_the_sources_keep_the_rules() -> None:
    root = repo_root()
    findings = [f for p in sources(root) for f in check_file(p, p.read_text())]
    assert findings == []


def test_no_runtime_package_imports_the_dev_tooling() -> None:
    root = repo_root()
    runtime = [*root.glob("shared/src/**/*.py"), *root.glob("services/*/src/**/*.py")]
    assert runtime
    importing = [
        str(path.relative_to(root))
        for path in runtime
        if re.search(r"^\s*(from|import)\s+clarion_devtools", path.read_text(), re.M)
    ]
    assert importing == []
    for manifest in [root / "shared/pyproject.toml", *root.glob("services/*/pyproject.toml")]:
        assert "clarion-devtools" not in manifest.read_text(), manifest
