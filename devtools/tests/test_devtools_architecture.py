"""The house rules of docs/SERVICE_SHAPE.md that a reader cannot check at a glance."""

from __future__ import annotations

import importlib
import re

import pytest

from clarion_devtools.localinfra import repo_root

SERVICES = ("clarion_gateway", "clarion_dispatcher", "clarion_directory", "clarion_webhooks")
# Rules and use cases: they raise domain errors and call ports, nothing else.
CORE_FILES = ("domain.py", "service.py", "versions.py")
EDGE_NAMES = re.compile(
    r"^\s*(from|import)\s+(fastapi|starlette|aiokafka|faststream)\b|\bApiError\b", re.M
)


def test_rules_and_use_cases_know_no_http_and_no_broker() -> None:
    root = repo_root()
    core = [p for name in CORE_FILES for p in root.glob(f"services/*/src/**/{name}")]
    assert len(core) >= 10
    offending = [str(p.relative_to(root)) for p in core if EDGE_NAMES.search(p.read_text())]
    assert offending == []


@pytest.mark.parametrize("package", SERVICES)
def test_every_service_has_the_same_composition_root(package: str) -> None:
    app = importlib.import_module(f"{package}.app")
    for name in ("Settings", "Adapters", "compose", "build"):
        assert hasattr(app, name), f"{package}.app.{name}"
    assert hasattr(app.Adapters, "connect")
    errors = importlib.import_module(f"{package}.errors")
    assert hasattr(errors, "ERRORS")
    settings = app.Settings()
    assert settings.db_name == package  # each service's database is its own
