"""``python -m clarion_devtools.shape``: the size rules of docs/SERVICE_SHAPE.md, checked.

- no source file above ``MAX_FILE_LINES`` lines;
- no function above ``MAX_FUNCTION_LINES`` lines, unless a ``# long: <reason>`` comment
  stands on its ``def`` line or between it and the first line of its body.

Sources are the runtime packages (``shared/src``, ``services/*/src``) and the dev tooling
(``devtools/src``); tests are not held to it. Exits 1 and lists what breaks a rule.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .localinfra import repo_root

MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60
REASON_MARK = "# long:"
SOURCE_DIRS = ("shared/src", "services/*/src", "devtools/src")


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def sources(root: Path) -> Iterator[Path]:
    for pattern in SOURCE_DIRS:
        for folder in sorted(root.glob(pattern)):
            yield from sorted(folder.rglob("*.py"))


def check_file(path: Path, text: str) -> list[Finding]:
    lines = text.splitlines()
    found: list[Finding] = []
    if len(lines) > MAX_FILE_LINES:
        found.append(Finding(path, 1, f"{len(lines)} lines (at most {MAX_FILE_LINES})"))
    for node in ast.walk(ast.parse(text, str(path))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if length <= MAX_FUNCTION_LINES:
            continue
        # The signature may span lines, and a docstring is the body's first statement.
        head = lines[node.lineno - 1 : node.body[0].lineno]
        if not any(REASON_MARK in line for line in head):
            found.append(
                Finding(
                    path,
                    node.lineno,
                    f"function {node.name} is {length} lines (at most {MAX_FUNCTION_LINES} "
                    f"without a '{REASON_MARK} <reason>' comment)",
                )
            )
    return found


def main() -> int:
    root = repo_root()
    findings = [
        finding
        for path in sources(root)
        for finding in check_file(path.relative_to(root), path.read_text())
    ]
    for finding in findings:
        print(finding, file=sys.stderr)
    checked = sum(1 for _ in sources(root))
    print(f"shape: {checked} source files, {len(findings)} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
