"""HTTP models of the category routes (CometChat's ``CreateCategoryDto`` and
``UpdateCategoryDto``; unknown fields are ignored)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from clarion_shared.api import ApiModel

from .domain import DESCRIPTION_MAX, NAME_MAX, Category, CategoryChanges


class CategoryCreate(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "Billing", "description": "Invoices"}]}
    )

    name: str = Field(
        min_length=1, max_length=NAME_MAX, description="Unique in the app (case-sensitive)."
    )
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)


class CategoryUpdate(ApiModel):
    """Only the fields given change; ``description: null`` clears it. The seven default
    categories keep their names."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"description": "Invoices"}]})

    name: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)

    def to_changes(self) -> CategoryChanges:
        return CategoryChanges(
            name=self.name,
            description=self.description,
            set_description="description" in self.model_fields_set,
        )


class CategoryPublic(ApiModel):
    id: str
    name: str
    description: str | None
    is_default: bool = Field(
        description="One of CometChat's seven, which every app has: never renamed or deleted."
    )
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, c: Category) -> CategoryPublic:
        return cls(
            id=c.category_id,
            name=c.name,
            description=c.description,
            is_default=c.default,
            created_at=c.created_at,
            updated_at=c.updated_at,
        )
