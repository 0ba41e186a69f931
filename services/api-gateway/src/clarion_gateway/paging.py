"""Lists: the API's ``page`` / ``perPage`` pages and the filters the lists share.

An app's channels and templates are few, so lists are read with one equality query on
the app and filtered, sorted and paged in process.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


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
