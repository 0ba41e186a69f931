"""docs/LIFE_OF_A_SEND.md names real code: every `module::function` in it exists."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

from clarion_devtools.localinfra import repo_root

# `package.module::name` or `package.module::Class.method`, in backticks.
REFERENCE = re.compile(r"`(clarion_[a-z_.]+)::([A-Za-z_][A-Za-z0-9_.]*)`")


def _defines(tree: ast.AST, dotted: str) -> bool:
    """Whether ``dotted`` (``name`` or ``Class.method``) is defined in ``tree``; a plain
    name may be nested (a route defined inside its router factory)."""
    *owners, name = dotted.split(".")
    scopes: list[ast.AST] = [tree]
    for owner in owners:
        scopes = [
            node
            for scope in scopes
            for node in ast.walk(scope)
            if isinstance(node, ast.ClassDef) and node.name == owner
        ]
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.name == name
        for scope in scopes
        for node in ast.walk(scope)
    )


def test_every_hop_named_in_the_life_of_a_send_exists() -> None:
    text = (repo_root() / "docs" / "LIFE_OF_A_SEND.md").read_text()
    references = REFERENCE.findall(text)
    assert len(references) >= 30, "the map names the function at each hop"
    missing = []
    for module, dotted in references:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            missing.append(f"{module} (no such module)")
            continue
        tree = ast.parse(Path(spec.origin).read_text())
        if not _defines(tree, dotted):
            missing.append(f"{module}::{dotted}")
    assert missing == []
