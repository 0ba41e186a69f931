"""What a dashboard page router is given: ``router(kit) -> APIRouter``.

Pages call the same use cases as the public routes (``wiring.UseCases``) on the same
adapters; the kit carries them so that every page module has the same shape and
``wiring.dashboard_routers`` lists the pages in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..app import Adapters
    from ..audit.service import Auditor
    from ..campaigns.dry_run_runner import DryRunRunner
    from ..campaigns.imports import ImportRunner
    from ..settings import Settings
    from ..wiring import UseCases
    from .web import Dashboard


@dataclass(frozen=True)
class PageKit:
    """The page routers' dependencies."""

    dashboard: Dashboard  # sessions, roles, CSRF and origin checks, rendering
    auditor: Auditor  # every send, campaign action and webhook change is recorded
    uses: UseCases  # the templates, channels and send path the public routes use
    adapters: Adapters  # the repositories and peers, as the public routes have them
    settings: Settings
    csv_imports: ImportRunner  # CSV uploads, as ``POST .../import-csv`` runs them
    csv_dry_runs: DryRunRunner  # their dry runs, as ``?dryRun=true`` runs them
