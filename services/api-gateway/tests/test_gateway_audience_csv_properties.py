"""The audience CSV parser against hostile input (issue: CSV audiences): whatever the
bytes and however they are chunked, the parser answers one of the three whole-file
failures or an audience that keeps every rule, always the same for the same bytes.

Well-formed files are also compared with a model: the standard library's ``csv`` reader
for the records and the rules written out plainly for the rest.
"""

from __future__ import annotations

import csv
import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clarion_gateway.campaigns.audience_csv import (
    ERR_CSV_INVALID,
    ERR_CSV_TOO_LARGE,
    ERR_TARGET_LIMIT_EXCEEDED,
    AudienceCsvFailed,
    AudienceParser,
    CsvLimits,
    ParsedAudience,
    RowRejected,
)
from clarion_gateway.slugs import UID_RE
from clarion_shared.templating import KEY_RE

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FAILURES = {ERR_CSV_INVALID, ERR_TARGET_LIMIT_EXCEEDED, ERR_CSV_TOO_LARGE}
# Small limits, so that generated files reach them.
TIGHT = CsvLimits(
    max_recipients=3, variable_max_bytes=12, receiver_variables_max_bytes=40, max_columns=5
)

Outcome = ParsedAudience | str  # the audience, or the code of the whole file's failure

# ---------------------------------------------------------------- strategies

CHARS = st.one_of(
    st.sampled_from(list("\",\r\n\x00 \t=+-@|'!")),
    st.characters(codec="utf-8"),
    st.sampled_from(["😀", "é", "€", "日", "\u2028", "\x85", "\ufeff", "\x0b"]),
)
CELLS = st.one_of(
    st.text(CHARS, max_size=10),
    st.sampled_from(["", " ", "=cmd|' /C calc'!A0", "@SUM(1+1)", "+1", "-1", '=HYPERLINK("x")']),
)
GOOD_UIDS = st.sampled_from(["u1", "u2", "u3", "u4", "u5", "Ab_9-x", " u1 ", "u2\t"])
UIDS = st.one_of(
    GOOD_UIDS, GOOD_UIDS, GOOD_UIDS, st.sampled_from(["", "bad id", "ü", "u1\x00"]), CELLS
)
NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,4}", fullmatch=True)
ODD_NAMES = st.sampled_from(["", " ", "1a", "a b", "USER_ID", " name ", "x", "é", '"q"'])
ENDS = st.sampled_from(["\n", "\r\n", "\r"])
EXISTING = st.frozensets(st.sampled_from(["u1", "u4", "e1", "e2"]), max_size=3)


def _field(value: str, force: bool) -> str:
    if force or any(c in value for c in '",\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def csv_texts(draw: st.DrawFn) -> str:
    """A file written correctly from random cells: ragged rows, blank rows, any header."""
    names = draw(st.lists(NAMES, max_size=4, unique=True))
    if not draw(st.integers(0, 5)):  # now and then an empty, bad or repeated name
        names.insert(draw(st.integers(0, len(names))), draw(ODD_NAMES))
    uid_at = draw(st.integers(0, len(names)))
    if draw(st.integers(0, 14)):  # mostly with a user_id column
        names.insert(uid_at, draw(st.sampled_from(["user_id", "User_ID", " user_id "])))
    records = [names]
    for _ in range(draw(st.integers(0, 12))):
        ragged = draw(st.sampled_from([0, 0, 0, 0, -1, 1, -len(names)]))
        width = max(len(names) + ragged, 0)
        row = draw(st.lists(CELLS, min_size=width, max_size=width))
        if uid_at < len(row) and draw(st.integers(0, 9)):
            row[uid_at] = draw(UIDS)
        records.append(row)
    lines = [",".join(_field(v, draw(st.booleans())) for v in rec) for rec in records]
    text = "".join(line + draw(ENDS) for line in lines)
    if text and draw(st.booleans()):
        text = text.rstrip("\r\n")
    return text


def cuts(size: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, size), max_size=8).map(sorted)


# ---------------------------------------------------------------- running the parser


def run(data: bytes, at: list[int], existing: frozenset[str], limits: CsvLimits) -> Outcome:
    parser = AudienceParser(existing, limits)
    try:
        for start, end in zip([0, *at], [*at, len(data)], strict=True):
            parser.feed(data[start:end])
        result = parser.close()
    except AudienceCsvFailed as failed:
        return failed_with(failed)
    check(result, existing, limits)
    return result


def failed_with(failure: AudienceCsvFailed) -> str:
    assert failure.code in FAILURES
    assert failure.message
    return failure.code


def check(result: ParsedAudience, existing: frozenset[str], limits: CsvLimits) -> None:
    """The invariants of every successful parse."""
    assert result.rows == len(result.recipients) + result.duplicates + len(result.rejected)
    assert len(existing | set(result.recipients)) <= limits.max_recipients
    for uid, variables in result.recipients.items():
        assert UID_RE.fullmatch(uid)
        assert uid not in existing
        assert set(variables) <= set(result.columns)
        for value in variables.values():
            assert value
            assert "\x00" not in value
            assert len(value.encode()) <= limits.variable_max_bytes
        compact = json.dumps(variables, separators=(",", ":"), ensure_ascii=False)
        assert len(compact.encode()) <= limits.receiver_variables_max_bytes
    rows = [r.row for r in result.rejected]
    assert all(row >= 2 for row in rows)
    assert rows == sorted(set(rows))
    assert {r.code for r in result.rejected} <= {
        "ERR_VALIDATION",
        "ERR_INVALID_VARIABLES",
        ERR_CSV_INVALID,
    }
    assert all(r.message for r in result.rejected)


def same_whatever_the_chunking(
    data: bytes, at: list[int], existing: frozenset[str], limits: CsvLimits
) -> Outcome:
    whole = run(data, [], existing, limits)
    try:
        data.decode()
    except UnicodeDecodeError:
        assert isinstance(whole, str)  # never an audience from a file that is not UTF-8
    assert run(data, at, existing, limits) == whole
    assert run(data, list(range(1, len(data))), existing, limits) == whole  # byte by byte
    return whole


# ---------------------------------------------------------------- the model


def model(text: str, existing: frozenset[str], limits: CsvLimits) -> Outcome:  # long: the rules
    records = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    header: tuple[int, int, list[tuple[int, str]]] | None = None
    rows, duplicates, rejected = 0, 0, list[RowRejected]()
    recipients: dict[str, dict[str, str]] = {}
    for number, fields in enumerate(records, start=1):
        if not any(f.strip() for f in fields):
            continue
        if header is None:
            named = [(i, f.strip()) for i, f in enumerate(fields) if f.strip()]
            uid_columns = [i for i, name in named if name.lower() == "user_id"]
            variables = [(i, name) for i, name in named if name.lower() != "user_id"]
            if (
                len(named) > limits.max_columns
                or len(uid_columns) != 1
                or not all(KEY_RE.fullmatch(name) for _, name in variables)
                or len({name for _, name in variables}) != len(variables)
            ):
                return ERR_CSV_INVALID
            header = (len(fields), uid_columns[0], variables)
            continue
        width, uid_at, variables = header
        rows += 1
        uid = fields[uid_at].strip() if uid_at < len(fields) else ""
        values = {name: fields[i] for i, name in variables if i < len(fields) and fields[i]}
        compact = json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()
        problem = (
            ERR_CSV_INVALID
            if len(fields) > width
            else "ERR_VALIDATION"
            if not UID_RE.fullmatch(uid)
            else next(
                (
                    "ERR_VALIDATION" if "\x00" in value else "ERR_INVALID_VARIABLES"
                    for value in values.values()
                    if "\x00" in value or len(value.encode()) > limits.variable_max_bytes
                ),
                "ERR_INVALID_VARIABLES"
                if len(compact) > limits.receiver_variables_max_bytes
                else None,
            )
        )
        if problem:
            rejected.append(RowRejected(number, problem, ""))
        elif uid in existing or uid in recipients:
            duplicates += 1
        elif len(existing) + len(recipients) >= limits.max_recipients:
            return ERR_TARGET_LIMIT_EXCEEDED
        else:
            recipients[uid] = values
    if header is None:
        return ERR_CSV_INVALID
    return ParsedAudience(
        tuple(name for _, name in header[2]), rows, recipients, duplicates, tuple(rejected)
    )


def comparable(outcome: Outcome) -> object:
    if isinstance(outcome, str):
        return outcome
    recipients = tuple((uid, tuple(values.items())) for uid, values in outcome.recipients.items())
    rejected = tuple((r.row, r.code) for r in outcome.rejected)
    return (outcome.columns, outcome.rows, recipients, outcome.duplicates, rejected)


# ---------------------------------------------------------------- properties


@SETTINGS
@given(st.data(), csv_texts(), EXISTING, st.sampled_from([CsvLimits(), TIGHT]), st.booleans())
def test_a_well_formed_file_gives_what_the_rules_say(
    data: st.DataObject, text: str, existing: frozenset[str], limits: CsvLimits, bom: bool
) -> None:
    raw = ("\ufeff" if bom else "").encode() + text.encode()
    outcome = same_whatever_the_chunking(raw, data.draw(cuts(len(raw))), existing, limits)
    assert comparable(outcome) == comparable(model(raw.decode(), existing, limits))


@SETTINGS
@given(st.data(), st.binary(max_size=300), EXISTING)
def test_any_bytes_get_a_clean_answer(
    data: st.DataObject, raw: bytes, existing: frozenset[str]
) -> None:
    same_whatever_the_chunking(raw, data.draw(cuts(len(raw))), existing, TIGHT)


@SETTINGS
@given(st.data(), csv_texts(), EXISTING)
def test_a_damaged_file_gets_a_clean_answer(
    data: st.DataObject, text: str, existing: frozenset[str]
) -> None:
    raw = bytearray(text.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        damage = data.draw(st.sampled_from([b'"', b",", b"\r", b"\n", b"\x00", b"\xff", b""]))
        raw[at : at + data.draw(st.integers(0, 2))] = damage
    same_whatever_the_chunking(bytes(raw), data.draw(cuts(len(raw))), existing, TIGHT)


@SETTINGS
@given(st.data(), csv_texts(), st.sampled_from(["latin-1", "cp1252", "utf-16"]))
def test_another_encoding_fails_unless_its_bytes_are_valid_utf8(
    data: st.DataObject, text: str, encoding: str
) -> None:
    try:
        raw = text.encode(encoding)
    except UnicodeEncodeError:
        raw = text.encode(encoding, errors="replace")
    outcome = same_whatever_the_chunking(raw, data.draw(cuts(len(raw))), frozenset(), TIGHT)
    if encoding == "utf-16":  # its BOM is never UTF-8
        assert outcome == ERR_CSV_INVALID
    try:
        decoded = raw.decode()
    except UnicodeDecodeError:
        return  # a failure, as same_whatever_the_chunking checked
    # Valid UTF-8 by chance (ASCII, or "Ã©" in latin-1): read as the UTF-8 it is.
    assert comparable(outcome) == comparable(model(decoded, frozenset(), TIGHT))


@SETTINGS
@given(st.data(), csv_texts(), st.integers(0, 200))
def test_the_size_limit_fails_the_same_whatever_the_chunking(
    data: st.DataObject, text: str, max_bytes: int
) -> None:
    raw = text.encode()
    limits = CsvLimits(max_bytes=max_bytes)
    outcome = same_whatever_the_chunking(raw, data.draw(cuts(len(raw))), frozenset(), limits)
    if len(raw) <= max_bytes:
        assert outcome == run(raw, [], frozenset(), CsvLimits())
    elif outcome != ERR_CSV_TOO_LARGE:  # only a failure earlier in the file may win
        assert outcome == run(raw[:max_bytes], [], frozenset(), CsvLimits())
        assert outcome in FAILURES
