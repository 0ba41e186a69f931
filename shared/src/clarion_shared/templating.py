"""Template tokens: ``{{key}}`` in any string of a template's JSON content.

The gateway uses ``tokens_in`` to refuse tokens outside the variable schema; the
dispatcher uses ``render`` per recipient. Rendering substitutes values only; it never
evaluates anything.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import JsonValue

from .contracts.sends import VariableSpec

TOKEN_RE = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
KEY_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_WHOLE_TOKEN_RE = re.compile(r"^\s*\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}\s*$")


def tokens_in(content: JsonValue) -> set[str]:
    """Every variable key referenced anywhere in ``content``."""
    found: set[str] = set()
    if isinstance(content, str):
        found.update(TOKEN_RE.findall(content))
    elif isinstance(content, dict):
        for value in content.values():
            found |= tokens_in(value)
    elif isinstance(content, list):
        for value in content:
            found |= tokens_in(value)
    return found


class MissingVariables(Exception):
    def __init__(self, keys: list[str]) -> None:
        super().__init__(f"missing required variables: {', '.join(keys)}")
        self.keys = keys


@dataclass(frozen=True)
class Renderer:
    """Renders one template's content for many recipients."""

    schema: tuple[VariableSpec, ...]

    def values_for(
        self,
        user_values: Mapping[str, JsonValue] | None,
        common_values: Mapping[str, JsonValue] | None,
    ) -> dict[str, JsonValue]:
        """Merge per-user, then common, then schema defaults; check required keys."""
        values: dict[str, JsonValue] = {}
        for spec in self.schema:
            if spec.default_value is not None:
                values[spec.key] = spec.default_value
        values.update(common_values or {})
        values.update(user_values or {})
        missing = [
            spec.key
            for spec in self.schema
            if spec.required and (values.get(spec.key) is None or values.get(spec.key) == "")
        ]
        if missing:
            raise MissingVariables(missing)
        return values

    def render(
        self, content: JsonValue, values: Mapping[str, JsonValue], escape_html_in: str = ""
    ) -> JsonValue:
        """Render ``content``; strings under the key ``escape_html_in`` get escaped values."""
        kinds = {spec.key: spec.type for spec in self.schema}
        return _render(content, values, kinds, escape_html_in, escape=False)


def _render(
    node: JsonValue,
    values: Mapping[str, JsonValue],
    kinds: Mapping[str, str],
    escape_key: str,
    escape: bool,
) -> JsonValue:
    if isinstance(node, str):
        whole = _WHOLE_TOKEN_RE.match(node)
        if whole and kinds.get(whole.group(1)) in ("image", "action"):
            key = whole.group(1)
            return values.get(key, node)

        def substitute(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in values or values[key] is None:
                return match.group(0)
            value = values[key]
            text = value if isinstance(value, str) else _to_text(value)
            return html.escape(text) if escape else text

        return TOKEN_RE.sub(substitute, node)
    if isinstance(node, dict):
        return {
            k: _render(
                v, values, kinds, escape_key, escape or (bool(escape_key) and k == escape_key)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_render(v, values, kinds, escape_key, escape) for v in node]
    return node


def _to_text(value: JsonValue) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))
