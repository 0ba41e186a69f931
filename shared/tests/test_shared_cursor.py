"""Cursor paging (API.md, Conventions): which mode a request asks for, and pages that
walk a list whole, forward and back, exactly once per item."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from clarion_shared.api import Cursored, Paged
from clarion_shared.cursor import (
    Affix,
    CursorPage,
    CursorRequest,
    ListParams,
    ListSorts,
    NumberedPage,
    Order,
    PageRequest,
    Position,
    listed,
    slice_cursor,
    window,
)
from clarion_shared.errors import Invalid

SORTS = ListSorts(
    fields={"updatedAt": "updatedAt", "createdAt": "createdAt", "name": "name"},
    page_default=("createdAt", "asc"),
)


@dataclass(frozen=True)
class Row:
    id: str
    updated_at: int
    name: str = ""


def test_no_parameter_is_page_mode_with_the_lists_defaults() -> None:
    assert ListParams().request(SORTS) == PageRequest(1, 20, "createdAt", "asc")


def test_page_parameters_with_sort_and_order_are_sorted_pages() -> None:
    asked = ListParams(page=2, per_page=5, order="desc", sort="name").request(SORTS)
    assert asked == PageRequest(2, 5, "name", "desc")


@pytest.mark.parametrize(
    "params",
    [
        ListParams(limit=5),
        ListParams(affix="prepend"),
        ListParams(order="asc"),
        ListParams(sort="name"),
        ListParams(id="a", values={"updatedAt": 3}),
    ],
)
def test_any_cursor_parameter_asks_for_cursor_mode(params: ListParams) -> None:
    assert isinstance(params.request(SORTS), CursorRequest)


def test_cursor_mode_defaults() -> None:
    asked = ListParams(limit=5).request(SORTS)
    assert asked == CursorRequest("updatedAt", "desc", 5, "append", None, "updatedAt")
    by_name = ListParams(sort="name").request(SORTS)
    assert isinstance(by_name, CursorRequest)
    assert (by_name.limit, by_name.field) == (20, "name")


def test_the_cursor_value_goes_by_the_sorts_name() -> None:
    asked = ListParams(id="b", sort="createdAt", values={"createdAt": 7, "updatedAt": None})
    assert asked.request(SORTS) == CursorRequest(
        "createdAt", "desc", 20, "append", Position(7, "b"), "createdAt"
    )


def _refused(params: ListParams) -> list[str]:
    with pytest.raises(Invalid) as refused:
        params.request(SORTS)
    return [d["field"] for d in refused.value.details]


def test_page_and_cursor_parameters_together_are_refused_naming_them() -> None:
    assert _refused(ListParams(page=2, limit=5)) == ["page", "limit"]
    assert _refused(ListParams(per_page=5, id="a", values={"updatedAt": 1})) == [
        "perPage",
        "id",
        "updatedAt",
    ]


def test_half_a_cursor_is_refused() -> None:
    assert _refused(ListParams(id="a")) == ["updatedAt"]
    assert _refused(ListParams(values={"updatedAt": 5})) == ["id"]


def test_a_cursor_value_of_another_sort_is_refused() -> None:
    assert _refused(ListParams(id="a", sort="name", values={"updatedAt": 5})) == ["updatedAt"]


# ---------------------------------------------------------------- walking a list

# Ties on the value: the id orders them.
ROWS = [Row(f"r{n}", updated_at=n // 3) for n in range(10)]


def _walk(order: Order, affix: Affix, limit: int) -> tuple[list[list[str]], list[bool]]:
    pages: list[list[str]] = []
    more: list[bool] = []
    position: Position | None = None
    while True:
        request = CursorRequest("updatedAt", order, limit, affix, position)
        page = slice_cursor(ROWS, request, lambda r: r.updated_at, lambda r: r.id)
        pages.append([r.id for r in page.items])
        more.append(page.has_more)
        if page.next is None:
            return pages, more
        position = page.next


def test_append_walks_the_list_once_in_order_and_says_exactly_when_it_ends() -> None:
    pages, more = _walk("desc", "append", 3)
    expected = [r.id for r in sorted(ROWS, key=lambda r: (r.updated_at, r.id), reverse=True)]
    assert [i for page in pages for i in page] == expected
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    assert more == [True, True, True, False]


def test_an_exact_multiple_ends_with_has_more_false_and_no_next() -> None:
    pages, more = _walk("asc", "append", 5)
    assert [len(p) for p in pages] == [5, 5]
    assert more == [True, False]


def test_prepend_walks_back_from_the_end_each_page_in_the_lists_order() -> None:
    pages, more = _walk("asc", "prepend", 4)
    ascending = [r.id for r in sorted(ROWS, key=lambda r: (r.updated_at, r.id))]
    assert pages == [ascending[6:], ascending[2:6], ascending[:2]]
    assert more == [True, True, False]


def test_prepend_from_a_cursor_gives_the_items_just_before_it() -> None:
    at = Position(2, "r7")  # desc order: r9 r8 r7 | r6 ...
    request = CursorRequest("updatedAt", "desc", 5, "prepend", at)
    page = slice_cursor(ROWS, request, lambda r: r.updated_at, lambda r: r.id)
    assert [r.id for r in page.items] == ["r9", "r8"]
    assert (page.has_more, page.next) == (False, None)


def test_a_cursor_whose_item_is_gone_still_places_the_page() -> None:
    at = Position(1, "r4x")  # between r4 and r5 in ascending order
    request = CursorRequest("updatedAt", "asc", 2, "append", at)
    page = slice_cursor(ROWS, request, lambda r: r.updated_at, lambda r: r.id)
    assert [r.id for r in page.items] == ["r5", "r6"]
    assert page.next == Position(2, "r6")


def test_names_compare_without_case() -> None:
    rows = [Row("a", 0, "beta"), Row("b", 0, "Alpha"), Row("c", 0, "alpha")]
    request = CursorRequest("name", "asc", 2, "append", None, "name")
    page = slice_cursor(
        rows, request, lambda r: r.name, lambda r: r.id, lambda v: str(v).casefold()
    )
    assert [r.id for r in page.items] == ["b", "c"]
    assert page.next == Position("alpha", "c")
    after = CursorRequest("name", "asc", 2, "append", page.next, "name")
    rest = slice_cursor(rows, after, lambda r: r.name, lambda r: r.id, lambda v: str(v).casefold())
    assert [r.id for r in rest.items] == ["a"]


def test_window_reverses_a_prepended_read_into_the_lists_order() -> None:
    request = CursorRequest("sentAt", "desc", 2, "prepend", Position(9, "x"), "sentAt")
    read = ["n1", "n2", "n3"]  # ascending, away from the cursor
    page = window(read, request, lambda i: Position(int(i[1]), i))
    assert page == CursorPage(["n2", "n1"], True, Position(2, "n2"), "sentAt")


def test_the_answers_of_both_modes() -> None:
    cursor = listed(CursorPage(["a"], True, Position(5, "a"), "sentAt"))
    assert isinstance(cursor, Cursored)
    assert cursor.to_json() == {
        "data": ["a"],
        "meta": {"cursor": {"hasMore": True, "next": {"sentAt": 5, "id": "a"}}},
    }
    end = listed(CursorPage(["a"], False, None))
    assert end.to_json()["meta"] == {"cursor": {"hasMore": False, "next": None}}
    paged = listed(NumberedPage(["a", "b"], 7, PageRequest(2, 2, "sentAt", "desc")))
    assert isinstance(paged, Paged)
    assert paged.meta.pagination.total_pages == 4
