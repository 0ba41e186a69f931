"""Strict JSON: what JSON cannot carry faithfully, or the database cannot store, is
refused with the place it stands, instead of being stored changed.

:func:`loads_strict` parses like ``json.loads`` and refuses (:class:`Refused`, a list of
:class:`Problem`, each naming its field the way request validation does:
``variables.alice.name``, ``users.0.name``):

- a key given twice in one object (``json.loads`` keeps the last, silently);
- ``NaN``, ``Infinity``, ``-Infinity``, and numbers that overflow to infinity
  (``1e999``): Python reads them, nothing else does, and they were stored as ``null``;
- integers outside JSON's safe range, ±(2**53-1): JavaScript clients round them, and
  past 2**63 the database refuses them;
- text, a value or a key, holding U+0000 or a lone surrogate (``"\\ud800"``):
  PostgreSQL (under FerretDB) stores no NUL, and UTF-8 has no surrogates.

Speed: one pass of ``json.loads``' C scanner with hooks on objects and numbers (about
twice the plain parse: 15 ms against 8 ms for a 10,000-receiver send of 1.1 MB). Text is
looked at only when the raw JSON could decode to a NUL or a lone surrogate, which only
escapes can do (a raw control character is not JSON, a raw surrogate is not UTF-8); an
escaped surrogate pair (an emoji from an ASCII-only encoder) is matched in the text.
Only a refused body takes the second, slower pass that says where each problem is.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1
"""The largest integer every JSON reader holds exactly (JavaScript's Number)."""
MAX_PROBLEMS = 20
"""At most this many problems are listed in one answer."""

_SAFE_DIGITS = len(str(MAX_SAFE_INTEGER))
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_HIGH = frozenset("89abAB")  # the third hex digit of \uD800-\uDBFF
_LOW = frozenset("cdefCDEF")  # and of \uDC00-\uDFFF
_D = frozenset("dD")

UNSTORABLE_TEXT = "holds U+0000 or an unpaired surrogate, which cannot be stored"
NOT_FINITE = "must be a finite number"
NOT_SAFE_INTEGER = f"must be an integer from -{MAX_SAFE_INTEGER} to {MAX_SAFE_INTEGER}"
DUPLICATE_KEY = "is given more than once in its object"


@dataclass(frozen=True)
class Problem:
    """One thing refused: ``field`` is the dotted path (None for the whole body)."""

    field: str | None
    message: str

    def detail(self) -> dict[str, str | None]:
        return {"field": self.field, "message": self.message}


class Refused(Exception):
    """Valid JSON that breaks the rules above; ``problems`` say where."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


def unstorable(text: str) -> bool:
    """Whether ``text`` holds U+0000 or a lone surrogate (neither can be stored:
    PostgreSQL has no NUL in text, and UTF-8 has no surrogates)."""
    return _UNSTORABLE.search(text) is not None


class _Broken(Exception):
    """A rule is broken somewhere; the second pass finds where."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Broken
    return obj


def _constant(name: str) -> Any:
    raise _Broken


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Broken
    return value


def _int(text: str) -> int:
    if len(text) < _SAFE_DIGITS:
        return int(text)
    if len(text.lstrip("-")) > _SAFE_DIGITS:
        raise _Broken  # checked before int(): 5,000 digits would not even convert
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise _Broken
    return value


def loads_strict(body: bytes) -> Any:
    """The JSON value of ``body``, if it keeps every rule above; else :class:`Refused`.
    A body that is not JSON raises ``ValueError``, as ``json.loads`` does."""
    encoding = json.detect_encoding(body)
    try:
        text = body.decode(encoding)
        suspicious = _may_hold_unstorable(text)
    except UnicodeDecodeError:
        # Surrogates written as raw bytes: json.loads would take them, so must this.
        text = body.decode(encoding, "surrogatepass")
        suspicious = True
    broken = False
    value: Any = None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object,
            parse_constant=_constant,
            parse_float=_float,
            parse_int=_int,
        )
    except _Broken:
        broken = True
    except RecursionError:
        raise Refused([Problem(None, "is nested too deeply")]) from None
    if broken or suspicious:
        problems = _problems(text)
        if problems:
            raise Refused(problems)
        if broken:  # never: both passes keep the same rules
            raise Refused([Problem(None, "is not valid")])
    return value


def _may_hold_unstorable(text: str) -> bool:
    """Whether JSON ``text`` may decode to a NUL or a lone surrogate; False is certain.

    In JSON text they can only come from escapes (a raw control character is not JSON,
    a raw surrogate is not UTF-8): ``\\u0000``, or a ``\\uD800``-``\\uDFFF`` escape
    that is not half of a pair. Pairs (an emoji escaped) are common and fine, so they
    are matched here rather than sent to the slow pass.
    """
    if "\\u0000" in text:
        return True
    if "\\ud" not in text and "\\uD" not in text:
        return False
    at = text.find("\\u")
    while at >= 0:
        if text[at + 2 : at + 3] in _D and not _escaped_backslash(text, at):
            third = text[at + 3 : at + 4]
            if third in _LOW:
                return True  # a low half with no high half before it
            if third in _HIGH:
                low = text[at + 6 : at + 10]
                if low[:2] != "\\u" or low[2:3] not in _D or low[3:4] not in _LOW:
                    return True  # a high half with no low half after it
                at += 6  # past the high half: the low half is paired
        at = text.find("\\u", at + 2)
    return False


def _escaped_backslash(text: str, at: int) -> bool:
    """Whether the backslash at ``at`` is itself escaped (odd run of backslashes before)."""
    run = 0
    while at - run - 1 >= 0 and text[at - run - 1] == "\\":
        run += 1
    return run % 2 == 1


class _Pairs(list[tuple[str, Any]]):
    """An object as its pairs, in order, a repeated key kept."""


@dataclass(frozen=True)
class _Bad:
    """A number refused, where it stood."""

    message: str


def _bad_constant(name: str) -> _Bad:
    return _Bad(NOT_FINITE)


def _float_or_bad(text: str) -> float | _Bad:
    value = float(text)
    return _Bad(NOT_FINITE) if math.isinf(value) else value


def _int_or_bad(text: str) -> int | _Bad:
    if len(text.lstrip("-")) > _SAFE_DIGITS or abs(int(text)) > MAX_SAFE_INTEGER:
        return _Bad(NOT_SAFE_INTEGER)
    return int(text)


def path_segment(key: str) -> str:
    """A key as a path segment, its unstorable characters written as escapes."""
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", key)


def _problems(text: str) -> list[Problem]:
    """Every problem of ``text`` (up to :data:`MAX_PROBLEMS`), in document order."""
    value = json.loads(
        text,
        object_pairs_hook=_Pairs,
        parse_constant=_bad_constant,
        parse_float=_float_or_bad,
        parse_int=_int_or_bad,
    )
    problems: list[Problem] = []
    # Depth first without recursion: the parser allows deeper nesting than Python's stack.
    stack: list[tuple[tuple[str, ...], Any]] = [((), value)]
    while stack and len(problems) < MAX_PROBLEMS:
        path, item = stack.pop()
        where = ".".join(path) or None
        if isinstance(item, _Pairs):
            seen: set[str] = set()
            children = []
            for key, child in item:
                child_path = (*path, path_segment(key))
                if unstorable(key):
                    problems.append(Problem(".".join(child_path), f"key {UNSTORABLE_TEXT}"))
                elif key in seen:
                    problems.append(Problem(".".join(child_path), DUPLICATE_KEY))
                seen.add(key)
                children.append((child_path, child))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend(((*path, str(i)), child) for i, child in reversed(list(enumerate(item))))
        elif isinstance(item, str) and unstorable(item):
            problems.append(Problem(where, UNSTORABLE_TEXT))
        elif isinstance(item, _Bad):
            problems.append(Problem(where, item.message))
    return problems[:MAX_PROBLEMS]
