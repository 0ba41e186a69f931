"""Writing CSV for spreadsheets: lines built one at a time (an export streams), cells
that a spreadsheet would run as a formula neutralised.

A cell starting with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which
some spreadsheets skip before one) is prefixed with ``'`` (OWASP, CSV injection): a uid
or an error message is data, never a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | None


def safe_cell(value: Cell) -> str:
    """The cell's text, quoted out of formula territory; None is empty. Numbers are
    written as they are (a negative number is a number, not a formula)."""
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def csv_line(cells: Iterable[Cell]) -> str:
    """One CSV record (RFC 4180: quoted where needed, CRLF-terminated)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([safe_cell(cell) for cell in cells])
    return out.getvalue()
