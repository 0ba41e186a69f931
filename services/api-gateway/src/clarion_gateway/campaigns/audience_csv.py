"""A campaign's audience from a CSV: a ``user_id`` column, every other column a per-user
variable. Pure and streaming: each chunk fed costs work in proportion to its size.

The whole file fails (:class:`AudienceCsvFailed`) when it cannot be read as an audience:
not UTF-8, a bad header, an unterminated quote, over the size or recipient limit. A bad
record only rejects itself (:class:`RowRejected`). Whether a uid exists is not checked
here: that needs the user directory.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import NoReturn

from clarion_shared.templating import KEY_RE

from ..slugs import UID_RE
from .csv_records import Record, Tokenizer
from .domain import RecipientRejected

ERR_CSV_INVALID = "ERR_CSV_INVALID"
ERR_TARGET_LIMIT_EXCEEDED = "ERR_TARGET_LIMIT_EXCEEDED"
ERR_CSV_TOO_LARGE = "ERR_PAYLOAD_TOO_LARGE"  # the route answers 413 with it
ERR_VALIDATION = "ERR_VALIDATION"
ERR_INVALID_VARIABLES = "ERR_INVALID_VARIABLES"

# Excel's column limit: a header with more fields is refused, so its memory stays bounded.
MAX_HEADER_FIELDS = 16_384
# Characters of a header cell and of a user_id cell, surrounding whitespace included.
MAX_NAME_CHARS = 256
MAX_UID_CELL_CHARS = 1024


@dataclass(frozen=True)
class CsvLimits:
    max_recipients: int = 10_000  # distinct uids in the whole audience
    max_bytes: int = 50 * 1024 * 1024  # the file
    variable_max_bytes: int = 8 * 1024  # one cell, UTF-8 encoded
    receiver_variables_max_bytes: int = 32 * 1024  # all variables of one row, as compact JSON
    max_columns: int = 200  # named columns, user_id included


@dataclass(frozen=True)
class RowRejected:
    row: int  # CSV record number, header = 1 (blank records count)
    code: str  # ERR_VALIDATION, ERR_INVALID_VARIABLES or ERR_CSV_INVALID
    message: str  # safe for end users, names the column where it helps


@dataclass(frozen=True)
class ParsedAudience:
    columns: tuple[str, ...]  # variable columns, in file order (not user_id)
    rows: int  # data records read (blank ones not counted)
    recipients: dict[str, dict[str, str]]  # uid -> variables, in file order, first row wins
    duplicates: int  # rows whose uid came earlier (in the file or in ``existing``)
    rejected: tuple[RowRejected, ...]
    # The row each kept uid came from (a later lookup that fails rejects that row).
    row_of: dict[str, int] = field(default_factory=dict, compare=False)


class AudienceCsvFailed(Exception):
    """The whole file fails: nothing of it may be imported."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _show(text: str, limit: int = 40) -> str:
    """``text`` quoted for a message: shortened, control characters escaped."""
    shown = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text[:limit])
    return f'"{shown}{"…" if len(text) > limit else ""}"'


@dataclass(frozen=True)
class _Header:
    width: int  # fields of the header record
    uid_at: int
    variables: tuple[tuple[int, str], ...]  # (field index, name), in file order


class AudienceParser:
    """Feed the file's bytes in chunks of any size, then ``close``.

    The first failure in the file's order wins, whatever the chunking (a chunk is parsed
    up to where it crosses ``max_bytes`` or stops being UTF-8). After a failure every call
    raises it again; after ``close`` every call raises ``RuntimeError``. ``on_duplicate``
    hears of each duplicate row (its number and uid) as it is read (a dry run lists them).
    """

    def __init__(
        self,
        existing: Collection[str] = (),
        limits: CsvLimits = CsvLimits(),
        on_duplicate: Callable[[int, str], None] | None = None,
    ) -> None:
        self._limits = limits
        self._on_duplicate = on_duplicate
        self._existing = frozenset(existing)
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._tokens = Tokenizer(self._record, MAX_NAME_CHARS, [])
        self._tokens.keep([True] * (MAX_HEADER_FIELDS + 1), MAX_NAME_CHARS)
        self._size = self._record_no = self._rows = self._duplicates = 0
        self._started = self._closed = False  # started: a leading BOM is dropped once
        self._header: _Header | None = None
        self._recipients: dict[str, dict[str, str]] = {}
        self._row_of: dict[str, int] = {}
        self._rejected: list[RowRejected] = []
        self._failure: AudienceCsvFailed | None = None

    @property
    def columns(self) -> tuple[str, ...] | None:
        """The variable columns; None until the header record is complete."""
        return None if self._header is None else tuple(n for _, n in self._header.variables)

    @property
    def rows(self) -> int:
        """The data records read so far (blank ones not counted)."""
        return self._rows

    def feed(self, data: bytes) -> None:
        self._check_usable()
        limit = self._limits.max_bytes
        if len(data) > limit - self._size:
            self._decode(data[: max(limit - self._size, 0)], final=False)
            size = f"{limit >> 20} MiB" if limit % (1 << 20) == 0 else f"{limit} bytes"
            self._fail(ERR_CSV_TOO_LARGE, f"The CSV is larger than {size}.")
        self._decode(data, final=False)

    def close(self) -> ParsedAudience:
        self._check_usable()
        self._decode(b"", final=True)
        if not self._tokens.finish():
            number = self._record_no + 1
            self._fail(ERR_CSV_INVALID, f"A quoted field in record {number} is never closed.")
        if (columns := self.columns) is None:
            self._fail(ERR_CSV_INVALID, "The CSV is empty: it needs a header with user_id.")
        self._closed = True
        rejected = tuple(self._rejected)
        return ParsedAudience(
            columns, self._rows, self._recipients, self._duplicates, rejected, self._row_of
        )

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise AudienceCsvFailed(self._failure.code, self._failure.message)
        if self._closed:
            raise RuntimeError("the audience parser is closed")

    def _fail(self, code: str, message: str) -> NoReturn:
        self._failure = AudienceCsvFailed(code, message)
        raise self._failure

    def _decode(self, data: bytes, final: bool) -> None:
        self._size += len(data)
        try:
            text, bad = self._decoder.decode(data, final), False
        except UnicodeDecodeError as exc:
            text, bad = exc.object[: exc.start].decode("utf-8"), True  # the text before it
        if text and not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        if text:
            self._tokens.feed(text)
        if bad:
            number = self._record_no + 1
            self._fail(ERR_CSV_INVALID, f"The file is not UTF-8 (bad bytes in record {number}).")

    def _record(self, record: Record) -> None:
        self._record_no += 1
        if not (record.more_text or record.stray_quote or any(c.strip() for c in record.fields)):
            return  # blank
        if self._header is None:
            self._header = self._read_header(record)
        else:
            self._rows += 1
            self._row(record, self._header)

    def _read_header(self, record: Record) -> _Header:
        if problem := _header_problem(record, self._limits):
            self._fail(ERR_CSV_INVALID, problem)
        named = [(i, name) for i, cell in enumerate(record.fields) if (name := cell.strip())]
        uid_at = next(i for i, name in named if name.lower() == "user_id")
        header = _Header(record.count, uid_at, tuple((i, n) for i, n in named if i != uid_at))
        wanted = {uid_at, *(i for i, _ in header.variables)}
        cell_cap = max(self._limits.variable_max_bytes, MAX_UID_CELL_CHARS)
        self._tokens.keep([i in wanted for i in range(max(wanted) + 1)], cell_cap)
        return header

    def _row(self, record: Record, header: _Header) -> None:
        cells = record.fields
        raw = cells[header.uid_at] if header.uid_at < len(cells) else ""
        uid = raw.strip()
        if record.stray_quote:
            self._reject(ERR_CSV_INVALID, "The row has text after a closing quote.")
        elif record.count > header.width:
            self._reject(ERR_CSV_INVALID, f"The row has {record.count} fields, too many.")
        elif len(raw) > MAX_UID_CELL_CHARS or not UID_RE.fullmatch(uid):  # or cut short
            what = f"user_id {_show(uid)} is not valid" if uid else "user_id is empty"
            self._reject(ERR_VALIDATION, f"{what}: use 1-100 letters, digits, '_' or '-'.")
        elif (variables := self._variables(cells, header)) is None:
            pass  # rejected
        elif uid in self._existing or uid in self._recipients:
            self._duplicates += 1
            if self._on_duplicate is not None:
                self._on_duplicate(self._record_no, uid)
        elif len(self._existing) + len(self._recipients) >= self._limits.max_recipients:
            limit = self._limits.max_recipients
            self._fail(ERR_TARGET_LIMIT_EXCEEDED, f"The audience is over {limit} recipients.")
        else:
            self._recipients[uid] = variables
            self._row_of[uid] = self._record_no

    def _variables(self, cells: list[str], header: _Header) -> dict[str, str] | None:
        """The row's variables, or None when one is refused (the row is rejected)."""
        cap, total = self._limits.variable_max_bytes, self._limits.receiver_variables_max_bytes
        variables, chars = dict[str, str](), 0
        for i, name in header.variables:
            cell = cells[i] if i < len(cells) else ""
            if not cell:
                continue  # absent: campaign and template defaults apply
            if "\x00" in cell:
                self._reject(ERR_VALIDATION, f"The column {name} holds a NUL character.")
                return None
            if len(cell) > cap // 4 and len(cell.encode()) > cap:
                self._reject(ERR_INVALID_VARIABLES, f"The column {name} is over {cap} bytes.")
                return None
            variables[name] = cell
            chars += len(name) + len(cell) + 1
        size = 6 * chars + 2  # a character takes at most 6 bytes in JSON (\u001f)
        if size > total:  # compact and UTF-8, as the gateway stores and sends variables
            size = len(json.dumps(variables, separators=(",", ":"), ensure_ascii=False).encode())
        if size > total:
            self._reject(ERR_INVALID_VARIABLES, f"The row's variables are over {total} bytes.")
            return None
        return variables

    def _reject(self, code: str, message: str) -> None:
        self._rejected.append(RowRejected(self._record_no, code, message))


def _header_problem(record: Record, limits: CsvLimits) -> str | None:
    """Why the header record cannot be used, if it cannot."""
    if record.stray_quote:
        return "The header has text after a closing quote."
    if record.count > MAX_HEADER_FIELDS:
        return f"The header has more than {MAX_HEADER_FIELDS} fields."
    if long := next((cell for cell in record.fields if len(cell) > MAX_NAME_CHARS), None):
        return f"The column name {_show(long)} is too long."
    names = [name for cell in record.fields if (name := cell.strip())]
    if len(names) > limits.max_columns:
        return f"The CSV has {len(names)} columns; at most {limits.max_columns} are allowed."
    uid_columns = sum(name.lower() == "user_id" for name in names)
    if uid_columns != 1:
        return f"The CSV has {'no' if not uid_columns else 'more than one'} user_id column."
    if bad := next((n for n in names if n.lower() != "user_id" and not KEY_RE.fullmatch(n)), ""):
        return f"The column {_show(bad)} is not a variable name (letters, digits, '_')."
    if twice := next((n for at, n in enumerate(names) if n in names[:at]), ""):
        return f"The column {_show(twice)} appears twice."
    return None


def rejected_rows(parsed: ParsedAudience, found: set[str]) -> list[RecipientRejected]:
    """The file's rejected rows and those of uids the user directory does not know
    (``found``: those it does), in row order: what an import (or its dry run) reports."""
    unknown = (
        RecipientRejected(uid, "ERR_USER_NOT_FOUND", "No such user.", row)
        for uid, row in parsed.row_of.items()
        if uid not in found
    )
    own = (RecipientRejected(None, r.code, r.message, r.row) for r in parsed.rejected)
    return sorted([*own, *unknown], key=lambda r: r.row or 0)


def parse_bytes(
    data: bytes, existing: Collection[str] = (), limits: CsvLimits = CsvLimits()
) -> ParsedAudience:
    """A whole file at once (tests, small uploads)."""
    parser = AudienceParser(existing, limits)
    parser.feed(data)
    return parser.close()
