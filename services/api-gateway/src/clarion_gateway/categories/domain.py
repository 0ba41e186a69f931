"""Template categories: an app's set of them and the rules on it.

Pure rules, no I/O. An app's categories are one value (:class:`AppCategories`),
saved whole and conditionally on its ``revision``, so a rule over the whole set
(names unique, at most ``MAX_CATEGORIES``) holds under concurrent requests.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace

from clarion_shared.errors import Conflict, Invalid, NotFound

from ..slugs import slugify

# CometChat's seven, in its order: every app has them, and they can be neither
# renamed nor deleted (API.md: they "exist in every app").
DEFAULT_NAMES = (
    "Onboarding",
    "Transactional",
    "Marketing",
    "Product_Showcase",
    "Alerts",
    "Polls",
    "Custom",
)
NAME_MAX = 100
DESCRIPTION_MAX = 1000
# One app's categories live in one document: this keeps it far below 16 MB.
MAX_CATEGORIES = 1000


@dataclass(frozen=True)
class Category:
    category_id: str
    name: str
    description: str | None
    created_at: int
    updated_at: int
    default: bool = False


@dataclass(frozen=True)
class CategoryChanges:
    """A PUT: ``name`` None keeps it; ``description`` is set (None clears it) only when
    ``set_description``."""

    name: str | None = None
    description: str | None = None
    set_description: bool = False


@dataclass(frozen=True)
class AppCategories:
    """Every category of one app, in creation order."""

    app_id: str
    categories: tuple[Category, ...]
    revision: int = 0  # optimistic concurrency: bumped by every save

    @classmethod
    def defaults(cls, app_id: str, now: int) -> AppCategories:
        return cls(
            app_id,
            tuple(
                Category(slugify(name, sep="_"), name, None, now, now, default=True)
                for name in DEFAULT_NAMES
            ),
        )

    def by_id(self, category_id: str) -> Category:
        for category in self.categories:
            if category.category_id == category_id:
                return category
        raise CategoryNotFound()

    def named(self, name: str) -> Category | None:
        for category in self.categories:
            if category.name == name:
                return category
        return None

    def add(self, name: str, description: str | None, now: int) -> tuple[AppCategories, Category]:
        if self.named(name) is not None:
            raise CategoryNameTaken(name)
        if len(self.categories) >= MAX_CATEGORIES:
            raise TooManyCategories()
        category = Category(self._free_id(name), name, description, now, now)
        return replace(self, categories=(*self.categories, category)), category

    def update(self, category: Category) -> AppCategories:
        """``category`` in place of the one with its id."""
        return replace(
            self,
            categories=tuple(
                category if c.category_id == category.category_id else c for c in self.categories
            ),
        )

    def change(
        self, category_id: str, changes: CategoryChanges, now: int
    ) -> tuple[AppCategories, Category]:
        """The category with ``changes`` applied (the set unchanged when they change
        nothing)."""
        current = self.by_id(category_id)
        updated = current
        if changes.name is not None and changes.name != current.name:
            if current.default:
                raise DefaultCategoryFixed(current, "renamed")
            if self.named(changes.name) is not None:
                raise CategoryNameTaken(changes.name)
            updated = replace(updated, name=changes.name)
        if changes.set_description and changes.description != current.description:
            updated = replace(updated, description=changes.description)
        if updated == current:
            return self, current
        updated = replace(updated, updated_at=now)
        return self.update(updated), updated

    def remove(self, category_id: str) -> tuple[AppCategories, Category]:
        category = self.by_id(category_id)
        if category.default:
            raise DefaultCategoryFixed(category, "deleted")
        kept = tuple(c for c in self.categories if c.category_id != category_id)
        return replace(self, categories=kept), category

    def restore(self, category: Category, deleted: bool) -> AppCategories:
        """``category`` back as it was, after an undone delete (``deleted``) or rename;
        the set as it is when its name is taken again meanwhile. A deleted category
        whose id was given to another one meanwhile comes back under a new id."""
        if self.named(category.name) is not None:
            return self
        id_taken = any(c.category_id == category.category_id for c in self.categories)
        if not deleted and id_taken:
            return self.update(category)
        if id_taken:
            category = replace(category, category_id=self._free_id(category.name))
        merged = sorted((*self.categories, category), key=lambda c: c.created_at)
        return replace(self, categories=tuple(merged))  # in creation order

    def _free_id(self, name: str) -> str:
        """A slug of ``name``; ``_2``, ``_3``, ... when taken in this app."""
        base = slugify(name, sep="_") or "category"
        taken = {c.category_id for c in self.categories}
        if base not in taken:
            return base
        n = 2
        while f"{base[:90]}_{n}" in taken:
            n += 1
        return f"{base[:90]}_{n}"


def check_name(value: str, field: str = "name") -> str:
    """A category name: 1-100 characters once trimmed, no control characters."""
    name = value.strip()
    if not name or len(name) > NAME_MAX:
        raise Invalid(
            f"A category name has 1-{NAME_MAX} characters.",
            details=[{"field": field, "message": f"1-{NAME_MAX} characters"}],
        )
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise Invalid(
            "A category name cannot hold control characters.",
            details=[{"field": field, "message": "control characters"}],
        )
    return name


def check_description(value: str | None) -> str | None:
    if value is not None and len(value) > DESCRIPTION_MAX:
        raise Invalid(
            f"A category description has at most {DESCRIPTION_MAX} characters.",
            details=[{"field": "description", "message": f"at most {DESCRIPTION_MAX}"}],
        )
    return value


class CategoryNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Category")


class CategoryNameTaken(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"A category named {name!r} already exists.", details={"name": name})


class TooManyCategories(Conflict):
    def __init__(self) -> None:
        super().__init__(
            f"The app has {MAX_CATEGORIES} categories, the most it may hold.",
            dev_message=f"Delete unused categories first (at most {MAX_CATEGORIES} per app).",
        )


class DefaultCategoryFixed(Conflict):
    def __init__(self, category: Category, change: str) -> None:
        super().__init__(
            f"The default category {category.name!r} cannot be {change}.",
            dev_message="CometChat's seven categories exist in every app; only their "
            "description can change.",
            details={"id": category.category_id, "name": category.name},
        )


class CategoryInUse(Conflict):
    def __init__(self, category: Category, template_ids: Sequence[str], change: str) -> None:
        shown = list(template_ids[:20])
        super().__init__(
            f"The category {category.name!r} is used by {len(template_ids)} template(s) and "
            f"cannot be {change}.",
            dev_message="Move the templates to another category first (PUT "
            "/v3/campaigns/templates/{id} {templateCategory}); archived ones count too.",
            details={
                "id": category.category_id,
                "name": category.name,
                "templates": len(template_ids),
                "templateIds": shown,
            },
        )


class CategoriesBusy(Conflict):
    """Another request saved the app's categories in between, every time we tried."""

    def __init__(self) -> None:
        super().__init__("The categories are being changed by another request; try again.")
