"""What the gateway's Mongo repositories share: how client JSON is stored.

Each resource's ``mongo.py`` names its own collections; this module names none.
"""

from __future__ import annotations

import json
from typing import Any, cast

from clarion_shared.contracts.base import JsonObject


def dump_json(value: JsonObject) -> str:
    """Client JSON (channel metadata, template content) is stored as a JSON string: its
    keys may hold ``.`` or ``$``, which the server refuses in field names."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def load_json(value: Any) -> JsonObject:
    if isinstance(value, str):
        loaded = json.loads(value)
        return cast(JsonObject, loaded) if isinstance(loaded, dict) else {}
    return cast(JsonObject, value) if isinstance(value, dict) else {}
