"""Lists: pages (``page`` / ``perPage``) or cursor pages (``clarion_shared.cursor``'s
rules), and the filters the lists share.

An app's channels, templates and categories are few, so lists are read with one
equality query on the app (one ``_id`` read for categories) and filtered, sorted and
paged in process: a cursor page costs that same read, whatever the cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fastapi import Query

from clarion_shared.api import Cursored, Paged
from clarion_shared.cursor import CursorPage, CursorRequest, PageRequest, SortValue, slice_cursor

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class Page:
    """One page of a list: the API's ``page`` / ``perPage`` pagination."""

    number: int
    per_page: int

    def slice(self, items: Sequence[T]) -> list[T]:
        start = (self.number - 1) * self.per_page
        return list(items[start : start + self.per_page])


@dataclass(frozen=True)
class PageOf(Generic[T]):
    items: list[T]
    total: int
    page: Page = field(default_factory=lambda: Page(1, 20))


def matches_search(search: str | None, *values: str | None) -> bool:
    if not search:
        return True
    needle = search.casefold()
    return any(v is not None and needle in v.casefold() for v in values)


def split_csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def matches_tags(tags: Iterable[str], wanted: Sequence[str], match: str) -> bool:
    if not wanted:
        return True
    have = set(tags)
    return all(t in have for t in wanted) if match == "all" else any(t in have for t in wanted)


# ---------------------------------------------------------------- both modes

NAME_CURSOR = Query(
    min_length=1, max_length=200, description="Cursor: the name of the last item (sort=name)."
)


@dataclass(frozen=True)
class SortKey(Generic[T]):
    """One ``sort`` of a list: the item's value; ``fold``: compared without case (names)."""

    value: Callable[[T], SortValue]
    fold: bool = False

    def normalized(self, value: SortValue) -> Any:
        return str(value).casefold() if self.fold else value


def paginate(
    items: Sequence[T],
    paging: PageRequest | CursorRequest,
    keys: Mapping[str, SortKey[T]],
    id_of: Callable[[T], str],
) -> PageOf[T] | CursorPage[T]:
    """The page or cursor page of ``items`` that ``paging`` asks for, ordered by the
    sort's value then the id (``clarion_shared.cursor``)."""
    key = keys[paging.sort]
    if isinstance(paging, CursorRequest):
        return slice_cursor(items, paging, key.value, id_of, key.normalized)
    ordered = sorted(items, key=lambda item: (key.normalized(key.value(item)), id_of(item)))
    if paging.order == "desc":
        ordered.reverse()
    page = Page(paging.number, paging.per_page)
    return PageOf(page.slice(ordered), len(ordered), page)


def answer(found: PageOf[T] | CursorPage[T], public: Callable[[T], U]) -> Paged[U] | Cursored[U]:
    """The API's answer of a list's page, in the mode it was asked in."""
    if isinstance(found, CursorPage):
        return Cursored[U].of(found.map(public))
    items = [public(item) for item in found.items]
    return Paged[U].of(items, found.total, found.page.number, found.page.per_page)
