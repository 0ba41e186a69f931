"""Template saves that name a category (``templateCategory``).

The category is made to exist before the save (an unknown name creates it; the name is
stored trimmed) and once more after it: a delete or rename of that category that ran
in between finds no template naming it, so the second look puts the name back (see
``categories.service``). The first keeps a crash between the two harmless.
"""

from __future__ import annotations

from dataclasses import replace

from clarion_shared.logging import get_logger

from ..categories.service import CategoryRepository, ensure_category
from . import service
from .domain import Template, TemplateChanges, TemplateDraft, TemplateLimits
from .service import TemplateRepository

log = get_logger(__name__)

FIELD = "templateCategory"


async def create_template(
    templates: TemplateRepository,
    categories: CategoryRepository,
    app_id: str,
    draft: TemplateDraft,
    now: int,
    limits: TemplateLimits = TemplateLimits(),
) -> Template:
    template = service.new_template(app_id, draft, now, limits)  # valid before any write
    name = template.template_category
    if name is not None:
        name = await ensure_category(categories, app_id, name, now, FIELD)
        template = replace(template, template_category=name)
    template = await service.insert_template(templates, template, draft.template_id is not None)
    if name is not None:
        await ensure_category(categories, app_id, name, now, FIELD)
    return template


async def update_template(
    templates: TemplateRepository,
    categories: CategoryRepository,
    app_id: str,
    template_id: str,
    changes: TemplateChanges,
    now: int,
    limits: TemplateLimits = TemplateLimits(),
) -> Template:
    name = changes.template_category
    if name is None:
        return await service.update_template(templates, app_id, template_id, changes, now, limits)
    # Checked (and created) only once the template is known to exist.
    await service.get_template(templates, app_id, template_id)
    name = await ensure_category(categories, app_id, name, now, FIELD)
    template = await service.update_template(
        templates, app_id, template_id, replace(changes, template_category=name), now, limits
    )
    await ensure_category(categories, app_id, name, now, FIELD)
    return template
