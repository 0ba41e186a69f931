"""The campaign audience CSV parser (issue: CSV audiences), by example: encodings, line
ends, quoting, header rules, row rules, duplicates, limits and streaming."""

from __future__ import annotations

import tracemalloc

import pytest

from clarion_gateway.campaigns.audience_csv import (
    ERR_CSV_INVALID,
    ERR_CSV_TOO_LARGE,
    ERR_TARGET_LIMIT_EXCEEDED,
    MAX_HEADER_FIELDS,
    AudienceCsvFailed,
    AudienceParser,
    CsvLimits,
    ParsedAudience,
    RowRejected,
    parse_bytes,
)

SMALL = CsvLimits(max_recipients=3)


def parse(text: str | bytes, **kwargs: object) -> ParsedAudience:
    data = text.encode() if isinstance(text, str) else text
    return parse_bytes(data, **kwargs)  # type: ignore[arg-type]


def in_pieces(data: bytes, size: int, **kwargs: object) -> ParsedAudience:
    parser = AudienceParser(**kwargs)  # type: ignore[arg-type]
    for at in range(0, len(data), size):
        parser.feed(data[at : at + size])
    return parser.close()


def failure(text: str | bytes, **kwargs: object) -> AudienceCsvFailed:
    with pytest.raises(AudienceCsvFailed) as caught:
        parse(text, **kwargs)
    return caught.value


def codes(result: ParsedAudience) -> list[tuple[int, str]]:
    return [(r.row, r.code) for r in result.rejected]


# ---------------------------------------------------------------- encodings and line ends


def test_a_plain_file_gives_each_uid_its_variables_in_file_order() -> None:
    result = parse("user_id,name,city\nu1,Ann,Oslo\nu2,Bob,Rome\n")
    assert result == ParsedAudience(
        columns=("name", "city"),
        rows=2,
        recipients={"u1": {"name": "Ann", "city": "Oslo"}, "u2": {"name": "Bob", "city": "Rome"}},
        duplicates=0,
        rejected=(),
    )
    assert list(result.recipients) == ["u1", "u2"]
    assert result.row_of == {"u1": 2, "u2": 3}


def test_a_utf8_bom_is_dropped_and_the_result_is_the_same() -> None:
    body = "user_id,name\nu1,Zoë\n".encode()
    with_bom = parse(b"\xef\xbb\xbf" + body)
    assert with_bom == parse(body)
    assert with_bom.recipients == {"u1": {"name": "Zoë"}}
    assert in_pieces(b"\xef\xbb\xbf" + body, 1) == with_bom


def test_only_the_leading_bom_is_dropped() -> None:
    error = failure(b"\xef\xbb\xbf\xef\xbb\xbfuser_id\nu1\n")
    assert error.code == ERR_CSV_INVALID
    assert "user_id" in error.message


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_lf_crlf_and_bare_cr_end_records(end: str) -> None:
    result = parse(f"user_id,name{end}u1,Ann{end}u2,Bob{end}")
    assert result.recipients == {"u1": {"name": "Ann"}, "u2": {"name": "Bob"}}


def test_a_file_may_mix_line_ends_and_omit_the_last_one() -> None:
    result = parse("user_id,name\r\nu1,Ann\nu2,Bob\r\nu3,Cy")
    assert result.recipients == {
        "u1": {"name": "Ann"},
        "u2": {"name": "Bob"},
        "u3": {"name": "Cy"},
    }


def test_a_crlf_split_between_chunks_is_one_line_end() -> None:
    data = b"user_id,name\r\nu1,Ann\r\nu2,Bob\r\n"
    for size in range(1, 8):
        result = in_pieces(data, size)
        assert result.rows == 2
        assert result.rejected == ()


def test_latin1_bytes_fail_the_file_naming_the_record() -> None:
    error = failure("user_id,name\nu1,Ann\nu2,Zoë\n".encode("latin-1"))
    assert error.code == ERR_CSV_INVALID
    assert "not UTF-8" in error.message
    assert "record 3" in error.message


def test_utf16_with_a_bom_fails_the_file() -> None:
    error = failure("user_id,name\nu1,Ann\n".encode("utf-16"))
    assert error.code == ERR_CSV_INVALID
    assert "not UTF-8" in error.message


def test_a_character_cut_off_at_the_end_of_the_file_is_not_utf8() -> None:
    error = failure("user_id,name\nu1,€".encode()[:-1])
    assert error.code == ERR_CSV_INVALID
    assert "not UTF-8" in error.message


def test_multibyte_characters_split_across_chunks_are_decoded_whole() -> None:
    data = '\ufeffuser_id,name,note\nu1,Zoë,😀 ok\nu2,€uro,"日本, 語"\n'.encode()
    whole = parse(data)
    assert whole.recipients == {
        "u1": {"name": "Zoë", "note": "😀 ok"},
        "u2": {"name": "€uro", "note": "日本, 語"},
    }
    for size in (1, 2, 3, 5):
        assert in_pieces(data, size) == whole


# ---------------------------------------------------------------- quoting


def test_quoted_fields_hold_commas_newlines_and_doubled_quotes() -> None:
    data = 'user_id,note\nu1,"a, b"\nu2,"line 1\r\nline 2\nline 3"\nu3,"say ""hi"""\n'
    result = parse(data)
    assert result.recipients == {
        "u1": {"note": "a, b"},
        "u2": {"note": "line 1\r\nline 2\nline 3"},
        "u3": {"note": 'say "hi"'},
    }


def test_row_numbers_count_records_not_lines() -> None:
    result = parse('user_id,note\nu1,"two\nlines"\nbad id,x\n')
    assert codes(result) == [(3, "ERR_VALIDATION")]


def test_a_quote_inside_an_unquoted_field_is_text() -> None:
    assert parse('user_id,size\nu1,5" screen\n').recipients == {"u1": {"size": '5" screen'}}


def test_text_after_a_closing_quote_rejects_only_that_row() -> None:
    result = parse('user_id,note\nu1,"a"b\nu2,ok\n')
    assert codes(result) == [(2, ERR_CSV_INVALID)]
    assert result.recipients == {"u2": {"note": "ok"}}


def test_a_last_record_may_end_with_its_closing_quote() -> None:
    assert parse('user_id\nu1\n"u2"').recipients == {"u1": {}, "u2": {}}
    assert parse('user_id,name\nu1,"Ann"').recipients == {"u1": {"name": "Ann"}}


def test_an_unterminated_quote_fails_the_whole_file() -> None:
    error = failure('user_id,note\nu1,ok\nu2,"never closed\nu3,x\n')
    assert error.code == ERR_CSV_INVALID
    assert "record 3" in error.message


def test_formula_looking_cells_are_kept_verbatim() -> None:
    cells = ["=cmd|' /C calc'!A0", "+1+1", "-2", "@SUM(A1)", '=HYPERLINK("http://x")']
    quoted = ",".join('"' + c.replace('"', '""') + '"' for c in cells)
    result = parse(f"user_id,a,b,c,d,e\nu1,{quoted}\n")
    assert result.recipients["u1"] == dict(zip("abcde", cells, strict=True))


# ---------------------------------------------------------------- the header


def test_the_user_id_column_is_found_anywhere_case_insensitively_and_trimmed() -> None:
    result = parse(" name , User_ID ,city\nAnn,u1,Oslo\n")
    assert result.columns == ("name", "city")
    assert result.recipients == {"u1": {"name": "Ann", "city": "Oslo"}}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("\n\r\n,,\n  \n", "empty"),
        ("name,email\nAnn,a@x\n", "no user_id column"),
        ("user_id,USER_ID\n", "more than one user_id"),
        ("user_id,name,name\n", '"name" appears twice'),
        ("user_id,first name\n", '"first name" is not a variable name'),
        ("user_id,1st\n", '"1st" is not a variable name'),
        ('user_id,"a"b\n', "closing quote"),
        ("user_id,na\x00me\n", "\\u0000"),
    ],
)
def test_a_bad_header_fails_the_whole_file(text: str, words: str) -> None:
    error = failure(text)
    assert error.code == ERR_CSV_INVALID
    assert words in error.message


def test_columns_with_an_empty_name_are_ignored() -> None:
    result = parse("user_id,name,,\nu1,Ann,junk,\n")
    assert result.columns == ("name",)
    assert result.recipients == {"u1": {"name": "Ann"}}
    assert result.rejected == ()


def test_blank_records_before_the_header_are_skipped_but_numbered() -> None:
    result = parse("\n\nuser_id\nbad id\n")
    assert result.columns == ()
    assert codes(result) == [(4, "ERR_VALIDATION")]


def test_max_columns_counts_named_columns_user_id_included() -> None:
    names = [f"v{i}" for i in range(199)]
    ok = parse("user_id," + ",".join(names) + ",,,\nu1\n")
    assert len(ok.columns) == 199
    error = failure("user_id," + ",".join([*names, "v199"]) + "\n")
    assert error.code == ERR_CSV_INVALID
    assert "200" in error.message


def test_a_header_with_more_fields_than_a_spreadsheet_has_fails() -> None:
    error = failure("user_id" + "," * MAX_HEADER_FIELDS + "\n")
    assert error.code == ERR_CSV_INVALID
    assert parse("user_id" + "," * (MAX_HEADER_FIELDS - 1) + "\nu1\n").recipients == {"u1": {}}


def test_a_very_long_column_name_fails() -> None:
    error = failure("user_id," + "a" * 1000 + "\n")
    assert error.code == ERR_CSV_INVALID
    assert "too long" in error.message


def test_columns_are_known_once_the_header_record_is_complete() -> None:
    parser = AudienceParser()
    parser.feed(b"user_id,na")
    assert parser.columns is None
    parser.feed(b"me\r")
    assert parser.columns == ("name",)


def test_a_bad_header_fails_on_feed_before_the_rest_arrives() -> None:
    parser = AudienceParser()
    with pytest.raises(AudienceCsvFailed) as caught:
        parser.feed(b"email,name\nAnn")
    assert caught.value.code == ERR_CSV_INVALID
    assert caught.value.message == "The CSV has no user_id column."


# ---------------------------------------------------------------- rows


def test_the_first_row_of_a_uid_wins_and_later_ones_are_duplicates() -> None:
    result = parse("user_id,name\nu1,First\nu2,B\nu1,Second\nu1,Third\n")
    assert result.recipients == {"u1": {"name": "First"}, "u2": {"name": "B"}}
    assert result.duplicates == 2
    assert result.rows == 4


def test_uids_already_in_the_audience_are_duplicates() -> None:
    result = parse("user_id\nu1\nu2\nu3\n", existing={"u2", "u9"})
    assert list(result.recipients) == ["u1", "u3"]
    assert result.duplicates == 1


def test_a_rejected_row_does_not_claim_its_uid() -> None:
    result = parse("user_id,name\nu1,bad\x00\nu1,good\n")
    assert codes(result) == [(2, "ERR_VALIDATION")]
    assert result.recipients == {"u1": {"name": "good"}}
    assert result.duplicates == 0


def test_uids_are_trimmed_and_checked() -> None:
    long_ok, too_long = "u" * 100, "u" * 101
    result = parse(f"user_id\n  u1 \n{long_ok}\n{too_long}\nbad id\nü\n,\n\t\n")
    assert list(result.recipients) == ["u1", long_ok]
    assert codes(result) == [(4, "ERR_VALIDATION"), (5, "ERR_VALIDATION"), (6, "ERR_VALIDATION")]
    assert all("user_id" in r.message for r in result.rejected)


def test_an_empty_uid_with_variables_is_rejected_not_blank() -> None:
    result = parse("user_id,name\n,Ann\n")
    assert result.rejected == (
        RowRejected(
            2, "ERR_VALIDATION", "user_id is empty: use 1-100 letters, digits, '_' or '-'."
        ),
    )


def test_blank_records_are_skipped_but_keep_their_number() -> None:
    result = parse('user_id,name\n\nu1,Ann\n , \n,,\n"",\nbad id,x\n')
    assert result.rows == 2
    assert codes(result) == [(7, "ERR_VALIDATION")]


def test_fewer_fields_leave_variables_absent_more_fields_reject_the_row() -> None:
    result = parse("user_id,name,city\nu1,Ann\nu2\nu3,Cy,Rome,extra\nu4,D,E,\n")
    assert result.recipients == {"u1": {"name": "Ann"}, "u2": {}}
    assert codes(result) == [(4, ERR_CSV_INVALID), (5, ERR_CSV_INVALID)]
    assert "4 fields" in result.rejected[0].message


def test_empty_cells_are_absent_and_other_cells_are_kept_untrimmed() -> None:
    result = parse('user_id,a,b,c\nu1,, x ,""\n')
    assert result.recipients == {"u1": {"b": " x "}}


def test_a_nul_in_a_variable_rejects_the_row_naming_the_column() -> None:
    result = parse("user_id,name,city\nu1,Ann,Os\x00lo\nu2,B,C\n")
    assert codes(result) == [(2, "ERR_VALIDATION")]
    assert "city" in result.rejected[0].message
    assert list(result.recipients) == ["u2"]


def test_a_cell_over_the_byte_limit_rejects_the_row() -> None:
    limit = CsvLimits().variable_max_bytes
    euro = "€" * (limit // 3 + 1)  # few characters, over the limit in bytes
    result = parse(f"user_id,note\nu1,{'x' * limit}\nu2,{'x' * (limit + 1)}\nu3,{euro}\n")
    assert list(result.recipients) == ["u1"]
    assert codes(result) == [(3, "ERR_INVALID_VARIABLES"), (4, "ERR_INVALID_VARIABLES")]
    assert "note" in result.rejected[0].message


def test_a_huge_cell_spanning_many_chunks_is_rejected_without_being_kept() -> None:
    data = b'user_id,note\nu1,"' + b"x" * 3_000_000 + b'"\nu2,ok\n'
    result = in_pieces(data, 65_536)
    assert codes(result) == [(2, "ERR_INVALID_VARIABLES")]
    assert result.recipients == {"u2": {"note": "ok"}}


def test_a_row_whose_variables_are_too_large_together_is_rejected() -> None:
    cells = ",".join(["y" * 7000] * 5)
    result = parse(f"user_id,a,b,c,d,e\nu1,{cells}\nu2,{cells[:20000]}\n")
    assert codes(result) == [(2, "ERR_INVALID_VARIABLES")]
    assert "32768" in result.rejected[0].message
    assert list(result.recipients) == ["u2"]


# ---------------------------------------------------------------- limits


def test_more_recipients_than_the_limit_fails_the_whole_file() -> None:
    assert len(parse("user_id\nu1\nu2\nu3\nu1\nbad id\n", limits=SMALL).recipients) == 3
    error = failure("user_id\nu1\nu2\nu3\nu4\n", limits=SMALL)
    assert error.code == ERR_TARGET_LIMIT_EXCEEDED
    assert "3" in error.message


def test_the_limit_counts_the_audience_already_there() -> None:
    assert len(parse("user_id\nu1\nu2\n", existing={"e1"}, limits=SMALL).recipients) == 2
    assert len(parse("user_id\ne1\nu1\nu2\n", existing={"e1"}, limits=SMALL).recipients) == 2
    error = failure("user_id\nu1\nu2\n", existing={"e1", "e2"}, limits=SMALL)
    assert error.code == ERR_TARGET_LIMIT_EXCEEDED


def test_a_10000_row_file_parses_and_one_more_uid_fails() -> None:
    rows = "".join(f'user{i},Name {i},"City, {i}"\n' for i in range(10_000))
    result = parse("user_id,name,city\n" + rows)
    assert len(result.recipients) == 10_000
    assert result.recipients["user9999"] == {"name": "Name 9999", "city": "City, 9999"}
    error = failure("user_id,name,city\n" + rows + "one_more,x,y\n")
    assert error.code == ERR_TARGET_LIMIT_EXCEEDED
    assert "10000" in error.message


def test_more_bytes_than_allowed_fail_on_the_feed_that_crosses_the_limit() -> None:
    limits = CsvLimits(max_bytes=20)
    assert parse_bytes(b"user_id\nu1\nu2\nu3\nu4\n", limits=limits).rows == 4  # 20 bytes
    parser = AudienceParser(limits=limits)
    parser.feed(b"user_id\nu1\nu2\n")
    with pytest.raises(AudienceCsvFailed) as caught:
        parser.feed(b"u3\nu4\nu5\n")
    assert caught.value.code == ERR_CSV_TOO_LARGE == "ERR_PAYLOAD_TOO_LARGE"
    assert "20 bytes" in caught.value.message


def test_an_earlier_failure_in_the_file_wins_over_its_size() -> None:
    with pytest.raises(AudienceCsvFailed) as caught:
        parse_bytes(b"email\nu1\nu2\nu3\n", limits=CsvLimits(max_bytes=10))
    assert caught.value.code == ERR_CSV_INVALID


def test_a_file_one_byte_over_50_mib_fails_fast_without_being_held() -> None:
    limit = CsvLimits().max_bytes
    mib = 1024 * 1024
    head = b'user_id,note\nu1,ok\nu2,"'
    chunk = b"x" * mib
    parser = AudienceParser()
    tracemalloc.start()
    try:
        parser.feed(head + chunk[len(head) :])
        for _ in range(limit // mib - 1):
            parser.feed(chunk)
        with pytest.raises(AudienceCsvFailed) as caught:
            parser.feed(b'"')
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.code == ERR_CSV_TOO_LARGE
    assert "50 MiB" in caught.value.message
    assert peak < 8 * mib  # a few chunks at most, never the file


# ---------------------------------------------------------------- the parser's life


def test_after_a_failure_every_call_raises_it_again() -> None:
    parser = AudienceParser()
    with pytest.raises(AudienceCsvFailed):
        parser.feed(b"name\n")
    with pytest.raises(AudienceCsvFailed) as again:
        parser.feed(b"user_id\nu1\n")
    assert again.value.message == "The CSV has no user_id column."
    with pytest.raises(AudienceCsvFailed) as on_close:
        parser.close()
    assert on_close.value.code == ERR_CSV_INVALID


def test_a_closed_parser_refuses_to_be_used() -> None:
    parser = AudienceParser()
    parser.feed(b"user_id\nu1\n")
    assert parser.close().recipients == {"u1": {}}
    with pytest.raises(RuntimeError):
        parser.close()
    with pytest.raises(RuntimeError):
        parser.feed(b"u2\n")


def test_chunking_does_not_change_the_result() -> None:
    data = (
        '\ufeffuser_id,name,note\r\nu1,Ann,"a,\r\nb"\r\n\r\nu2,"B""",x\ru3,C\n'
        'bad id,x,y\nu1,dup,\nu4,"a"b,c\nu5,5" tall,\n'
    ).encode()
    whole = parse(data)
    assert whole.rows == 7
    for size in range(1, 12):
        assert in_pieces(data, size) == whole


def test_a_uid_cell_padded_past_its_limit_is_rejected_never_cut_into_a_valid_uid() -> None:
    data = b"user_id,name\nu1" + b" " * 9000 + b"x,Ann\nu2,Bob\n"
    whole = parse_bytes(data)
    assert whole == in_pieces(data, 1)
    assert whole.recipients == {"u2": {"name": "Bob"}}
    assert codes(whole) == [(2, "ERR_VALIDATION")]


def test_a_small_cell_limit_does_not_cut_uids() -> None:
    limits = CsvLimits(variable_max_bytes=4)
    uid = "user_" + "x" * 95
    result = parse_bytes(f"user_id,name\n{uid},Ann\n".encode(), limits=limits)
    assert result.recipients == {uid: {"name": "Ann"}}


def test_a_row_whose_only_text_lies_past_a_cells_limit_is_not_blank() -> None:
    data = b"user_id,note\n," + b" " * 9000 + b"x\nu2,ok\n"
    for result in (parse_bytes(data), in_pieces(data, 100)):
        assert result.rows == 2
        assert codes(result) == [(2, "ERR_VALIDATION")]
