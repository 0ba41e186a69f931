"""CSV records (RFC 4180) from text fed in pieces of any size, for the audience parser
(``audience_csv``): the fields each record keeps, cut to a cap, and what else it held.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Record:
    fields: list[str]  # the kept fields (see Tokenizer.want), each cut to field_cap + 1
    count: int  # fields the record has
    more_text: bool  # a field was cut, or one not kept held more than whitespace
    stray_quote: bool  # text followed a closing quote


_START, _UNQUOTED, _QUOTED, _QUOTE_SEEN, _CR = range(5)
_UNQUOTED_STOP = re.compile(r'["\r\n]')
_LINE_END = re.compile(r"\r\n|\r|\n")
_QUOTED_RUN = re.compile(r'(?:[^"]++|"")*+')


@dataclass
class Tokenizer:
    """RFC 4180 records from text in pieces of any size; CR, LF and CRLF end records.

    Memory stays bounded: a field keeps its first ``field_cap + 1`` characters (enough to
    know it is over a limit) and only the fields ``want`` marks are kept, the others are
    counted. Lines without a quote are split in bulk: a few calls per ordinary record.
    """

    emit: Callable[[Record], None]
    field_cap: int
    want: list[bool]
    solid: int = 0  # the fields kept before the first one ``want`` drops
    state: int = _START
    fields: list[str] = field(default_factory=list)
    count: int = 0
    more_text: bool = False
    stray_quote: bool = False
    piece: list[str] = field(default_factory=list)
    piece_len: int = 0

    def keep(self, want: list[bool], field_cap: int) -> None:
        self.want, self.field_cap = want, field_cap
        self.solid = want.index(False) if False in want else len(want)

    def feed(self, s: str) -> None:
        i, n = 0, len(s)
        while i < n:
            if self.state == _QUOTED:
                j = next(_QUOTED_RUN.finditer(s, i)).end()  # at a quote that is no ""
                self._add(s[i:j].replace('""', '"'))
                self.state, i = (_QUOTE_SEEN, j + 1) if j < n else (_QUOTED, n)
            elif self.state == _QUOTE_SEEN:  # "" is a quote, else the quoted part is over
                self.stray_quote |= s[i] not in '",\r\n'
                self.state = _QUOTED if s[i] == '"' else _UNQUOTED
                if s[i] == '"':
                    self._add('"')
                    i += 1
            elif self.state == _CR:
                self.state, i = _START, i + (s[i] == "\n")
            elif self.state == _START and not self.count and (k := self._lines(s, i)) > i:
                i = k
            else:
                i = self._unquoted(s, i)

    def _lines(self, s: str, i: int) -> int:
        """Emits the whole lines from ``i`` (a record's start) up to the next quote."""
        end = quote if (quote := s.find('"', i)) >= 0 else len(s)
        last = max(s.rfind("\n", i, end), s.rfind("\r", i, end))
        if last < 0:
            return i
        lines = _LINE_END.split(s[i : last + 1])
        lines.pop()  # the empty text after the last line end
        for line in lines:  # the header's record changes what the next ones keep
            parts = line.split(",")
            if len(line) <= self.field_cap and len(parts) <= self.solid:  # all kept as is
                self.emit(Record(parts, len(parts), False, False))
            else:
                self._store_many(parts)
                self._emit()
        self.state = _CR if s[last] == "\r" else _START
        return last + 1

    def _unquoted(self, s: str, i: int) -> int:
        """Reads from ``i`` up to the next quote or line end; returns where to go on."""
        found = _UNQUOTED_STOP.search(s, i)
        stop = found.start() if found else len(s)
        if stop > i:
            parts = s[i:stop].split(",")
            self._add(parts[0])
            if len(parts) > 1:
                self._end_field()
                self._store_many(parts[1:-1])
                self.state = _START
                self._add(parts[-1])
            if parts[-1]:
                self.state = _UNQUOTED
        if found is None:
            return len(s)
        if s[stop] == '"' and self.state == _START:
            self.state = _QUOTED
        elif s[stop] == '"':  # a quote inside an unquoted field is text, as spreadsheets write it
            self._add('"')
        else:
            self._end_field()
            self._emit()
            self.state = _CR if s[stop] == "\r" else _START
        return stop + 1

    def _add(self, text: str) -> None:
        room = self.field_cap + 1 - self.piece_len
        if room > 0:
            self.piece.append(text[:room])
        self.piece_len += len(text)

    def _end_field(self) -> None:
        text, self.piece, self.piece_len = "".join(self.piece), [], 0
        self._store_many([text])

    def _store_many(self, parts: list[str]) -> None:
        """Ends one field per part."""
        cap = self.field_cap
        if max(map(len, parts), default=0) > cap:
            parts = [part[: cap + 1] for part in parts]
            self.more_text = True
        start = self.count
        self.count += len(parts)
        room = max(len(self.want) - start, 0)
        kept = parts[:room]
        if all(self.want[start : start + len(kept)]):
            self.fields.extend(kept)
        else:
            for at, text in enumerate(kept, start):
                self.fields.append(text if self.want[at] else "")
                self.more_text |= not self.want[at] and bool(text.strip())
        if len(parts) > room and "".join(parts[room:]).strip():
            self.more_text = True

    def _emit(self) -> None:
        record = Record(self.fields, self.count, self.more_text, self.stray_quote)
        self.fields, self.count, self.more_text, self.stray_quote = [], 0, False, False
        self.emit(record)

    def finish(self) -> bool:
        """The end of the text: emits an unfinished record; False inside open quotes."""
        if self.state == _QUOTED:
            return False
        if self.state in (_UNQUOTED, _QUOTE_SEEN) or self.count or self.piece_len:
            self._end_field()
            self._emit()
        return True
