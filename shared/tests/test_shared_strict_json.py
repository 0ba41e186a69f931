"""Strict JSON: each rule refuses naming the field; what keeps the rules parses as
``json.loads`` does."""

from __future__ import annotations

import json
import random

import pytest

from clarion_shared.strict_json import (
    MAX_PROBLEMS,
    MAX_SAFE_INTEGER,
    Problem,
    Refused,
    loads_strict,
    unstorable,
)


def refused(body: str | bytes) -> list[Problem]:
    with pytest.raises(Refused) as caught:
        loads_strict(body.encode() if isinstance(body, str) else body)
    return caught.value.problems


def test_what_keeps_the_rules_parses_as_json_loads_does() -> None:
    body = json.dumps(
        {
            "receivers": ["alice", "bob"],
            "variables": {"alice": {"name": "Zoë \U0001f600", "n": MAX_SAFE_INTEGER}},
            "min": -MAX_SAFE_INTEGER,
            "float": 1e308,
            "tiny": -1.5e-300,
            "flags": [True, False, None],
            "backslash": "\\u0000 is only text here",
            "nested": [[[{"a": [1, 2.5, "x"]}]]],
        }
    )
    assert "\\ud83d\\ude00" in body  # the emoji as an escaped surrogate pair
    assert loads_strict(body.encode()) == json.loads(body)
    assert loads_strict(body.encode("utf-16")) == json.loads(body)
    assert loads_strict(b'"\xf0\x9f\x98\x80 raw UTF-8"') == "\U0001f600 raw UTF-8"


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ('{"uid": "a", "uid": "b"}', "uid", "more than once"),
        ('{"variables": {"alice": {"name": "A", "name": "B"}}}', "variables.alice.name", "once"),
        ('{"users": [{"uid": "a"}, {"uid": "b", "uid": "c"}]}', "users.1.uid", "once"),
        ('{"n": NaN}', "n", "finite"),
        ('{"n": Infinity}', "n", "finite"),
        ('{"n": [1, -Infinity]}', "n.1", "finite"),
        ('{"n": 1e999}', "n", "finite"),
        ('{"n": -1e999}', "n", "finite"),
        ('{"n": 9007199254740992}', "n", "9007199254740991"),
        ('{"n": -9007199254740992}', "n", "9007199254740991"),
        ('{"n": 9223372036854775808}', "n", "9007199254740991"),
        ('{"n": 1%s}' % ("0" * 5000), "n", "9007199254740991"),
        ('{"variables": {"alice": {"name": "\\u0000"}}}', "variables.alice.name", "U+0000"),
        ('{"variables": {"alice": {"name": "a\\ud800"}}}', "variables.alice.name", "surrogate"),
        ('{"t": ["ok", "\\udc00 low"]}', "t.1", "surrogate"),
        ('{"t": "\\ude00\\ud83d"}', "t", "surrogate"),  # a pair in the wrong order
        ('{"meta": {"a\\u0000b": 1}}', "meta.a\\u0000b", "key holds U+0000"),
        ('{"meta": {"\\ud800": 1}}', "meta.\\ud800", "key holds"),
        ('"\\u0000"', None, "U+0000"),
    ],
)
def test_each_rule_refuses_naming_the_field(body: str, field: str | None, says: str) -> None:
    [problem] = refused(body)
    assert problem.field == field
    assert says in problem.message


def test_surrogates_written_as_raw_bytes_are_found() -> None:
    [problem] = refused(b'{"name": "\xed\xa0\x80"}')
    assert problem.field == "name"


def test_every_problem_is_listed_in_document_order_up_to_a_limit() -> None:
    problems = refused('{"a": NaN, "b": {"c": "\\u0000", "c": 1}, "d": [1e999]}')
    assert [p.field for p in problems] == ["a", "b.c", "b.c", "d.0"]
    many = json.dumps({f"k{i}": "\x00" for i in range(MAX_PROBLEMS + 5)})
    assert len(refused(many)) == MAX_PROBLEMS


def test_nesting_too_deep_for_the_parser_is_refused() -> None:
    [problem] = refused("[" * 100_000 + "]" * 100_000)
    assert problem.field is None


def test_what_is_not_json_is_left_to_the_route() -> None:
    for body in (b'{"a": ', b"not json", b"\xff\xfe\xfd"):
        with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)) as caught:
            loads_strict(body)
        assert not isinstance(caught.value, Refused)


def test_a_10000_receiver_send_passes_unchanged() -> None:
    uids = [f"user-{i:05d}" for i in range(10_000)]
    body = json.dumps(
        {
            "templateId": "order",
            "receivers": uids,
            "variables": {uid: {"name": f"Zoë {uid} \U0001f600", "total": 9.5} for uid in uids},
        }
    ).encode()
    assert loads_strict(body) == json.loads(body)


def test_the_text_shortcut_agrees_with_reading_every_string() -> None:
    """Escapes, escaped backslashes and pairs in every order: a body is refused exactly
    when one of its decoded strings holds a NUL or a lone surrogate."""
    pieces = ["a", "é", "u", "d800", "\\\\", '\\"', "\\u00e9", "\\u0000", "\\ud83d", "\\ude00"]
    pieces += ["\\uD83D", "\\uDE00", "\\udbff", "\\udfff", "\\\\ud800", "\\\\\\ud800"]
    rng = random.Random(6)
    for _ in range(20_000):
        key = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 3)))
        value = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        text = '{"' + key + '": ["' + value + '", 1]}'
        decoded_key, [decoded, _] = next(iter(json.loads(text).items()))
        expected = any(unstorable(s) for s in (decoded_key, decoded))
        try:
            loads_strict(text.encode("utf-8", "surrogatepass"))
        except Refused:
            assert expected, text
        else:
            assert not expected, text
