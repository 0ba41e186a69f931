"""Template categories: the use cases and the repository they need.

An app's categories are read and saved whole (one document per app), created with
CometChat's seven defaults the first time anything reads them; every change is a read,
a pure transformation (``domain``) and a save conditional on the set's revision, tried
again when another request saved in between.

Templates name their category by name. A template save first makes its category exist
(:func:`ensure_category`) and checks again once saved; a delete or rename takes the
name away first and looks for templates naming it afterwards, putting it back when it
finds one. Whichever order two such requests run in, no template is left naming a
category that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random

from clarion_shared.cursor import CursorPage, CursorRequest, ListSorts, PageRequest, slice_cursor
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger

from ..paging import Page, PageOf, SortKey
from ..templates.domain import Template
from .domain import (
    AppCategories,
    CategoriesBusy,
    Category,
    CategoryChanges,
    CategoryInUse,
    check_description,
    check_name,
)

log = get_logger(__name__)

# Saves tried before a change gives up to concurrent writers (409). An app's categories
# are one document, so every template save naming a new category competes for it: each
# round one writer wins, and a short random pause spreads the others out.
SAVE_ATTEMPTS = 25
SAVE_PAUSE_S = 0.005


class CategoryRepository(Resource, Protocol):
    async def get(self, app_id: str) -> AppCategories | None: ...

    async def insert(self, categories: AppCategories) -> bool:
        """False when the app's categories exist already."""
        ...

    async def replace(self, categories: AppCategories) -> bool:
        """Save ``categories`` unless someone saved them since they were read (their
        ``revision`` moved); the stored revision goes up by one."""
        ...


class TemplateCatalog(Protocol):
    """What categories need of the templates: who names a category."""

    async def list_for_app(self, app_id: str) -> list[Template]: ...


CATEGORY_SORTS = ListSorts(
    fields={"name": "name", "createdAt": "createdAt", "updatedAt": "updatedAt"},
    page_default=("updatedAt", "desc"),
)
_SORT_KEYS: dict[str, SortKey[Category]] = {
    "name": SortKey(lambda c: c.name, fold=True),
    "createdAt": SortKey(lambda c: c.created_at),
    "updatedAt": SortKey(lambda c: c.updated_at),
}


@dataclass(frozen=True)
class CategoryQuery:
    paging: PageRequest | CursorRequest = field(
        default_factory=lambda: PageRequest(1, 20, "updatedAt", "desc")
    )


async def app_categories(categories: CategoryRepository, app_id: str, now: int) -> AppCategories:
    """The app's categories; the seven defaults are saved on the first read."""
    found = await categories.get(app_id)
    if found is not None:
        return found
    defaults = AppCategories.defaults(app_id, now)
    if await categories.insert(defaults):
        log.info("categories.defaults_created", app_id=app_id)
        return defaults
    # Another request created them at the same moment.
    found = await categories.get(app_id)
    if found is None:
        raise CategoriesBusy()
    return found


async def _change(
    categories: CategoryRepository,
    app_id: str,
    now: int,
    change: Callable[[AppCategories], tuple[AppCategories, Category | None]],
) -> tuple[AppCategories, Category | None]:
    """Read, ``change`` and save the app's categories; read again while another request
    wins the save (:class:`CategoriesBusy` once ``SAVE_ATTEMPTS`` are spent)."""

    async def attempt() -> tuple[AppCategories, Category | None]:
        current = await app_categories(categories, app_id, now)
        updated, category = change(current)
        if updated == current:
            return current, category
        if not await categories.replace(updated):
            raise CategoriesBusy()
        return replace(updated, revision=updated.revision + 1), category

    retrying = AsyncRetrying(
        stop=stop_after_attempt(SAVE_ATTEMPTS),
        wait=wait_random(0, SAVE_PAUSE_S),
        retry=retry_if_exception_type(CategoriesBusy),
        reraise=True,
    )
    return await retrying(attempt)


async def list_categories(
    categories: CategoryRepository, app_id: str, query: CategoryQuery, now: int
) -> PageOf[Category] | CursorPage[Category]:
    found = (await app_categories(categories, app_id, now)).categories
    paging = query.paging
    if isinstance(paging, CursorRequest):  # ordered by the value, then the id
        return slice_cursor(
            found,
            paging,
            _SORT_KEYS[paging.sort].value,
            lambda c: c.category_id,
            _SORT_KEYS[paging.sort].normalized,
        )
    if paging.sort == "name":
        ordered = sorted(
            found, key=lambda c: (c.name.casefold(), c.name), reverse=paging.order == "desc"
        )
    else:
        value = _SORT_KEYS[paging.sort].value
        # Ties stay in creation order (pages; a cursor needs the id's order).
        ordered = sorted(found, key=value, reverse=paging.order == "desc")
    page = Page(paging.number, paging.per_page)
    return PageOf(page.slice(ordered), len(ordered), page)


async def get_category(
    categories: CategoryRepository, app_id: str, category_id: str, now: int
) -> Category:
    return (await app_categories(categories, app_id, now)).by_id(category_id)


async def create_category(
    categories: CategoryRepository, app_id: str, name: str, description: str | None, now: int
) -> Category:
    name = check_name(name)
    description = check_description(description)
    _, category = await _change(
        categories, app_id, now, lambda current: current.add(name, description, now)
    )
    assert category is not None
    log.info("category.created", app_id=app_id, category_id=category.category_id)
    return category


async def ensure_category(
    categories: CategoryRepository, app_id: str, name: str, now: int, field: str
) -> str:
    """The checked ``name`` (``field`` in errors), created in the app when unknown."""
    name = check_name(name, field)

    def add_unknown(current: AppCategories) -> tuple[AppCategories, Category | None]:
        known = current.named(name)
        return (current, known) if known is not None else current.add(name, None, now)

    await _change(categories, app_id, now, add_unknown)
    return name


async def templates_using(catalog: TemplateCatalog, app_id: str, name: str) -> list[str]:
    """The ids of the app's templates (archived ones too) in category ``name``."""
    return sorted(
        t.template_id for t in await catalog.list_for_app(app_id) if t.template_category == name
    )


async def _undo_if_used(
    categories: CategoryRepository,
    catalog: TemplateCatalog,
    before: Category,
    app_id: str,
    now: int,
    change: str,
) -> None:
    """After ``before``'s name was taken away: when a template still names it, put
    ``before`` back and raise :class:`CategoryInUse`. When the name exists again
    meanwhile (a template save recreated it), the change stands."""
    users = await templates_using(catalog, app_id, before.name)
    if not users:
        return
    deleted = change == "deleted"
    restored, _ = await _change(
        categories, app_id, now, lambda current: (current.restore(before, deleted), None)
    )
    back = restored.named(before.name)
    if back is not None and replace(back, category_id=before.category_id) == before:
        raise CategoryInUse(before, users, change)


async def update_category(
    categories: CategoryRepository,
    catalog: TemplateCatalog,
    app_id: str,
    category_id: str,
    changes: CategoryChanges,
    now: int,
) -> Category:
    if changes.name is not None:
        changes = replace(changes, name=check_name(changes.name))
    if changes.set_description:
        check_description(changes.description)
    seen: list[Category] = []

    def change(current: AppCategories) -> tuple[AppCategories, Category | None]:
        seen[:] = [current.by_id(category_id)]
        return current.change(category_id, changes, now)

    _, category = await _change(categories, app_id, now, change)
    assert category is not None
    before = seen[0]
    if category.name != before.name:
        await _undo_if_used(categories, catalog, before, app_id, now, "renamed")
    log.info("category.updated", app_id=app_id, category_id=category_id)
    return category


async def delete_category(
    categories: CategoryRepository,
    catalog: TemplateCatalog,
    app_id: str,
    category_id: str,
    now: int,
) -> Category:
    _, category = await _change(
        categories, app_id, now, lambda current: current.remove(category_id)
    )
    assert category is not None
    await _undo_if_used(categories, catalog, category, app_id, now, "deleted")
    log.info("category.deleted", app_id=app_id, category_id=category_id)
    return category
