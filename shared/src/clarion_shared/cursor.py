"""Lists paged two ways (API.md, Conventions): pages (``page``, ``perPage``, the default)
or CometChat's cursors (``limit``, ``affix``, ``id``, ``sort``, ``order`` and the last
item's sort value). One set of rules for every list of every service:

- **Which mode.** ``page`` or ``perPage`` ask for page mode; ``limit``, ``affix``, ``id``
  or a cursor value (``updatedAt``, ``sentAt``, ...) for cursor mode, and so do ``sort``
  or ``order`` alone. Both kinds at once is 400 ``ERR_VALIDATION`` (no silent choice);
  ``sort`` and ``order`` with ``page`` / ``perPage`` order the pages.
- **The order.** By the sort value, then the item's ``id``: a total order, so a cursor
  names one place in it whatever items share a value.
- **The cursor** is the last item's sort value and ``id``, both or neither (400 for
  one alone). The value travels under the sort's own name: ``updatedAt`` for
  ``sort=updatedAt``, ``createdAt`` for ``sort=createdAt``, ``name``, ``channelType``;
  on the feed ``sentAt`` (its items are created when sent). A value under another
  name than the sort's is 400: it would place the cursor by the wrong field.
- **affix.** ``append`` (the default): the ``limit`` items after the cursor, the next
  page. ``prepend``: the ``limit`` items just before it. Either way the answer lists
  them in the list's own ``order``. Without a cursor, ``append`` starts at the list's
  beginning and ``prepend`` at its end.
- **The answer.** ``hasMore`` says exactly whether items remain beyond the answer in
  the direction read; ``next`` is the cursor to pass with the same ``affix`` to go on
  (the last item for ``append``, the first for ``prepend``), null when none remain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Query

from .api import DEFAULT_PER_PAGE, MAX_PER_PAGE, Cursored, Paged
from .errors import Invalid
from .strict_input import MAX_PAGE

T = TypeVar("T")
U = TypeVar("U")

SortValue = int | str
Order = Literal["asc", "desc"]
Affix = Literal["append", "prepend"]

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_TIMESTAMP = 999_999_999_999
"""The largest Unix time a cursor or a date filter takes: twelve digits (the year
33658), so it fits the feed's fixed-width sort key and every database's integers."""


@dataclass(frozen=True)
class Position:
    """Where a cursor points: an item's sort value and its id (the tie-break)."""

    value: SortValue
    id: str


@dataclass(frozen=True)
class PageRequest:
    number: int
    per_page: int
    sort: str
    order: Order


@dataclass(frozen=True)
class CursorRequest:
    sort: str
    order: Order
    limit: int
    affix: Affix
    position: Position | None
    field: str = "updatedAt"

    @property
    def ascending(self) -> bool:
        """Whether the items beyond the cursor are read in ascending order: the list's
        own order for ``append``, against it for ``prepend``."""
        return (self.order == "asc") == (self.affix == "append")


@dataclass(frozen=True)
class CursorPage(Generic[T]):
    """A cursor page; ``field`` names the sort value of ``next`` in the answer."""

    items: list[T]
    has_more: bool
    next: Position | None
    field: str = "updatedAt"

    def map(self, convert: Callable[[T], U]) -> CursorPage[U]:
        return CursorPage([convert(i) for i in self.items], self.has_more, self.next, self.field)


@dataclass(frozen=True)
class NumberedPage(Generic[T]):
    """A page of page mode, and how many items the list has in all."""

    items: list[T]
    total: int
    request: PageRequest

    def map(self, convert: Callable[[T], U]) -> NumberedPage[U]:
        return NumberedPage([convert(i) for i in self.items], self.total, self.request)


@dataclass(frozen=True)
class ListSorts:
    """What one list sorts by: each ``sort`` value and the name its cursor value goes
    by, and the defaults of each mode."""

    fields: Mapping[str, str]
    page_default: tuple[str, Order]
    cursor_default: tuple[str, Order] = ("updatedAt", "desc")


@dataclass(frozen=True)
class ListParams:
    """A list request's paging parameters as given (None: absent)."""

    page: int | None = None
    per_page: int | None = None
    limit: int | None = None
    affix: Affix | None = None
    id: str | None = None
    order: Order | None = None
    sort: str | None = None
    values: Mapping[str, SortValue | None] = field(default_factory=dict)

    def sorted_by(self, sort: str | None, values: Mapping[str, SortValue | None]) -> ListParams:
        """These parameters with the list's own ``sort`` and cursor values."""
        return ListParams(
            self.page, self.per_page, self.limit, self.affix, self.id, self.order, sort, values
        )

    def request(self, sorts: ListSorts) -> PageRequest | CursorRequest:
        """The mode asked for and its settings; :class:`Invalid` (400) as the module
        docstring says."""
        given_values = {name: v for name, v in self.values.items() if v is not None}
        paging = [n for n, v in (("page", self.page), ("perPage", self.per_page)) if v is not None]
        cursor = [
            n
            for n, v in (("limit", self.limit), ("affix", self.affix), ("id", self.id))
            if v is not None
        ] + sorted(given_values)
        if paging and cursor:
            raise _invalid(
                "Page and cursor parameters cannot be mixed.",
                [*paging, *cursor],
                "page mode (page, perPage) or cursor mode (limit, affix, id and the cursor "
                "value), not both",
            )
        if paging or not (cursor or self.sort or self.order):
            sort, order = sorts.page_default
            return PageRequest(
                self.page or 1,
                self.per_page or DEFAULT_PER_PAGE,
                self.sort or sort,
                self.order or order,
            )
        return self._cursor(sorts, given_values)

    def _cursor(self, sorts: ListSorts, values: Mapping[str, SortValue]) -> CursorRequest:
        default_sort, default_order = sorts.cursor_default
        sort = self.sort or default_sort
        name = sorts.fields[sort]
        stray = sorted(set(values) - {name})
        if stray:
            raise _invalid(
                f"The cursor of sort={sort} is {name} and id.",
                stray,
                f"not the cursor value of sort={sort}: pass {name}",
            )
        value = values.get(name)
        if (value is None) != (self.id is None):
            missing = name if value is None else "id"
            raise _invalid(
                f"A cursor is {name} and id together.",
                [missing],
                f"required with {'id' if missing == name else name} (the last item's)",
            )
        return CursorRequest(
            sort=sort,
            order=self.order or default_order,
            limit=self.limit or DEFAULT_LIMIT,
            affix=self.affix or "append",
            position=None if value is None or self.id is None else Position(value, self.id),
            field=name,
        )


def _invalid(message: str, fields: Sequence[str], detail: str) -> Invalid:
    return Invalid(message, details=[{"field": f, "message": detail} for f in fields])


def listed(page: NumberedPage[T] | CursorPage[T]) -> Paged[T] | Cursored[T]:
    """The answer of a list's page, in the mode it was asked in."""
    if isinstance(page, CursorPage):
        return Cursored[T].of(page)
    return Paged[T].of(page.items, page.total, page.request.number, page.request.per_page)


def window(
    beyond: Sequence[T], request: CursorRequest, position_of: Callable[[T], Position]
) -> CursorPage[T]:
    """The answer from up to ``limit + 1`` items beyond the cursor, in the order read
    (:attr:`CursorRequest.ascending`): one more than asked says there are more."""
    taken = list(beyond[: request.limit])
    has_more = len(beyond) > request.limit
    last = taken[-1] if taken else None
    if request.affix == "prepend":
        taken.reverse()
    after = position_of(last) if has_more and last is not None else None
    return CursorPage(taken, has_more, after, request.field)


def slice_cursor(
    items: Iterable[T],
    request: CursorRequest,
    value_of: Callable[[T], SortValue],
    id_of: Callable[[T], str],
    normalize: Callable[[SortValue], Any] = lambda value: value,
) -> CursorPage[T]:
    """One cursor page of a list held in memory, ordered by ``normalize(value)`` then id
    (``normalize``: ``str.casefold`` for names, say)."""

    def key(value: SortValue, id_: str) -> tuple[Any, str]:
        return normalize(value), id_

    ordered = sorted(items, key=lambda item: key(value_of(item), id_of(item)))
    if not request.ascending:
        ordered.reverse()
    if request.position is not None:
        at = key(request.position.value, request.position.id)
        if request.ascending:
            ordered = [i for i in ordered if key(value_of(i), id_of(i)) > at]
        else:
            ordered = [i for i in ordered if key(value_of(i), id_of(i)) < at]
    return window(
        ordered[: request.limit + 1], request, lambda item: Position(value_of(item), id_of(item))
    )


# ---------------------------------------------------------------- HTTP parameters


def list_params(
    page: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_PAGE,
            description="Page mode (the default): the page, from 1. With limit, affix, id or "
            "a cursor value: 400.",
        ),
    ] = None,
    per_page: Annotated[
        int | None,
        Query(alias="perPage", ge=1, le=MAX_PER_PAGE, description="Page mode: items a page."),
    ] = None,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_LIMIT,
            description="Cursor mode (as are affix, id, a cursor value, and sort or order "
            "without page or perPage): items in the answer (default 20).",
        ),
    ] = None,
    affix: Annotated[
        Affix | None,
        Query(
            description="Cursor mode: append (the items after the cursor, the default) or "
            "prepend (the items just before it); both answer in the list's order, and next "
            "continues in the same direction. Without a cursor, append starts at the list's "
            "beginning, prepend at its end."
        ),
    ] = None,
    id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Cursor: the id of the last item, with its sort value under the "
            "sort's name (updatedAt, createdAt, name, channelType; sentAt on the feed); one "
            "without the other is 400. Ties on the value are ordered by id.",
        ),
    ] = None,
    order: Annotated[
        Order | None,
        Query(description="asc or desc (cursor mode: desc by default)."),
    ] = None,
) -> ListParams:
    """The paging parameters every list shares, for ``Depends`` (``sort`` and the cursor
    values are each list's own: :meth:`ListParams.sorted_by`)."""
    return ListParams(page=page, per_page=per_page, limit=limit, affix=affix, id=id, order=order)


def _cursor_time(name: str, what: str) -> Any:
    return Query(
        alias=name,
        ge=0,
        le=MAX_TIMESTAMP,
        description=f"Cursor: the {what} (Unix seconds) of the last item, with its id.",
    )


UpdatedAtCursor = Annotated[int | None, _cursor_time("updatedAt", "updatedAt")]
CreatedAtCursor = Annotated[
    int | None, _cursor_time("createdAt", "createdAt (with sort=createdAt)")
]
SentAtCursor = Annotated[int | None, _cursor_time("sentAt", "sentAt")]
