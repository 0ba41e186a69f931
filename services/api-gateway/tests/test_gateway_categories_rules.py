"""Category rules (pure) and the use cases' answers to races with template saves."""

from __future__ import annotations

from dataclasses import replace

import pytest

from clarion_gateway.categories import service
from clarion_gateway.categories.domain import (
    MAX_CATEGORIES,
    AppCategories,
    Category,
    CategoryChanges,
    CategoryInUse,
    CategoryNameTaken,
    DefaultCategoryFixed,
    TooManyCategories,
)
from clarion_gateway.templates.domain import Template
from clarion_gateway.templates.versions import new_version
from clarion_gateway.testing import MemoryCategories, MemoryTemplates


def _template(template_id: str, category: str | None) -> Template:
    return Template(
        app_id="app",
        template_id=template_id,
        name=template_id,
        versions=(new_version(1, (), (), now=1),),
        created_at=1,
        updated_at=1,
        template_category=category,
    )


def test_ids_are_slugs_made_unique_in_the_app() -> None:
    cats = AppCategories.defaults("app", 1)
    assert [c.category_id for c in cats.categories][:4] == [
        "onboarding",
        "transactional",
        "marketing",
        "product_showcase",
    ]
    cats, first = cats.add("Black Friday", None, 2)
    cats, second = cats.add("black-friday", None, 2)
    cats, third = cats.add("BLACK friday!", None, 2)
    _, fourth = cats.add("Ünïcode ✓", None, 2)
    _, fifth = cats.add("日本", None, 2)
    assert [first.category_id, second.category_id, third.category_id] == [
        "black_friday",
        "black_friday_2",
        "black_friday_3",
    ]
    assert (fourth.category_id, fifth.category_id) == ("unicode", "category")


def test_names_are_unique_and_the_set_is_bounded() -> None:
    cats = AppCategories.defaults("app", 1)
    with pytest.raises(CategoryNameTaken):
        cats.add("Alerts", None, 2)
    full = replace(
        cats,
        categories=tuple(Category(f"c{i}", f"C{i}", None, 1, 1) for i in range(MAX_CATEGORIES)),
    )
    with pytest.raises(TooManyCategories):
        full.add("One more", None, 2)


def test_changes_and_defaults() -> None:
    cats, billing = AppCategories.defaults("app", 1).add("Billing", "d", 2)
    same, unchanged = cats.change("billing", CategoryChanges(name="Billing"), 3)
    assert same is cats
    assert unchanged == billing
    _, cleared = cats.change("billing", CategoryChanges(set_description=True), 3)
    assert (cleared.description, cleared.updated_at) == (None, 3)
    _, kept = cats.change("billing", CategoryChanges(description=None), 3)
    assert kept.description == "d"
    with pytest.raises(DefaultCategoryFixed):
        cats.change("alerts", CategoryChanges(name="Warnings"), 3)
    with pytest.raises(DefaultCategoryFixed):
        cats.remove("custom")


def test_restore_puts_a_category_back_unless_its_name_is_taken() -> None:
    cats, billing = AppCategories.defaults("app", 1).add("Billing", None, 2)
    cats, _ = cats.add("Later", None, 3)
    without, _ = cats.remove("billing")
    assert without.restore(billing, deleted=True).categories == cats.categories  # in order
    renamed, _ = cats.change("billing", CategoryChanges(name="Payments"), 4)
    assert renamed.restore(billing, deleted=False).categories == cats.categories
    retaken, _ = without.add("Billing", None, 5)
    assert retaken.restore(billing, deleted=True) == retaken
    # Its id went to another category meanwhile: back under a new id, that one kept.
    id_reused, other = without.add("billing!", None, 5)
    assert other.category_id == "billing"
    back = id_reused.restore(billing, deleted=True)
    assert back.by_id("billing") == other
    assert back.named("Billing") == replace(billing, category_id="billing_2")


async def test_delete_answers_409_when_a_template_was_saved_meanwhile() -> None:
    """A template saved between the delete's removal and its look at the templates (so
    its category was still there when it checked): the category is put back as it was."""
    categories = MemoryCategories()
    await service.create_category(categories, "app", "Billing", "d", now=1)

    class SavedInBetween(MemoryTemplates):
        async def list_for_app(self, app_id: str) -> list[Template]:
            return [_template("receipt", "Billing")]

    with pytest.raises(CategoryInUse):
        await service.delete_category(categories, SavedInBetween(), "app", "billing", now=2)
    back = await service.get_category(categories, "app", "billing", now=3)
    assert (back.name, back.description, back.created_at) == ("Billing", "d", 1)


async def test_a_template_save_after_the_delete_brings_the_name_back() -> None:
    """The other order: the delete finds no template, the template save's second look
    (after its own write) finds the name gone and creates it again."""
    categories = MemoryCategories()
    await service.create_category(categories, "app", "Billing", None, now=1)
    await service.delete_category(categories, MemoryTemplates(), "app", "billing", now=2)
    await service.ensure_category(categories, "app", "Billing", now=3, field="templateCategory")
    again = await service.get_category(categories, "app", "billing", now=4)
    assert again.created_at == 3


async def test_a_name_recreated_during_a_delete_lets_the_delete_stand() -> None:
    """The template save recreated the name before the delete could put it back: the
    delete stands (the template's category exists), and the answer says so."""
    categories = MemoryCategories()
    await service.create_category(categories, "app", "Billing", None, now=1)

    class RecreatedMeanwhile(MemoryTemplates):
        async def list_for_app(self, app_id: str) -> list[Template]:
            await service.ensure_category(categories, app_id, "Billing", now=2, field="x")
            return [_template("receipt", "Billing")]

    deleted = await service.delete_category(
        categories, RecreatedMeanwhile(), "app", "billing", now=3
    )
    assert deleted.created_at == 1
    names = [c.name for c in (await categories.get("app") or AppCategories("app", ())).categories]
    assert names.count("Billing") == 1


async def test_saves_retry_while_others_win() -> None:
    class Contended(MemoryCategories):
        losses = 3

        async def replace(self, categories: AppCategories) -> bool:
            if self.losses:
                self.losses -= 1
                return False
            return await super().replace(categories)

    categories = Contended()
    created = await service.create_category(categories, "app", "Billing", None, now=1)
    assert created.name == "Billing"
    stored = await categories.get("app")
    assert stored is not None
    assert stored.revision == 1
