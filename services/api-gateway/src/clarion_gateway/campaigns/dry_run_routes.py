"""Routes of dry runs of CSV imports (Clarion's own: CometChat has none). A dry run is
started by the import routes with a flag (``import-csv {s3Key, dryRun: true}``,
``recipients/csv?dryRun=true``: ``import_routes``) and read here:

- ``GET /v3/campaigns/campaigns/{id}/dry-runs/{dryRunId}``: its progress while it runs
  (rows and bytes read, of ``totalBytes``), then what the import would do;
- ``GET .../dry-runs/{dryRunId}/rejected.csv``: every rejected row, with its number and
  reason, as CSV safe to open in a spreadsheet (``clarion_shared.csv_export``).

Confirming is ``import-csv {s3Key}`` with the dry run's ``s3Key``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import Field

from clarion_shared.api import CLIENT_ERRORS, ApiModel, Data, error_response
from clarion_shared.csv_export import csv_line
from clarion_shared.ids import now

from ..web import Auth
from . import dry_runs
from .domain import RecipientRejected
from .dry_run_runner import DryRunRunner
from .dry_runs import DryRun, DryRunView

PREFIX = "/v3/campaigns/campaigns"
REJECTED_CSV_HEADER = ("row", "user_id", "code", "message")
_NOT_FOUND = error_response(
    "ERR_NOT_FOUND: no such campaign, or no such dry run of it (they are kept 24 h)"
)


class DryRunStarted(ApiModel):
    dry_run_id: str
    s3_key: str = Field(description="The file's key: POST .../import-csv {s3Key} imports it.")
    status: str = Field(description="running")

    @classmethod
    def of(cls, run: DryRun) -> DryRunStarted:
        return cls(dry_run_id=run.dry_run_id, s3_key=run.upload_key, status=run.status)


class DryRunRejectedPublic(ApiModel):
    row: int | None = Field(default=None, description="CSV record number (header = 1).")
    user_id: str | None = Field(default=None, description="Of the uids no user has.")
    code: str
    message: str

    @classmethod
    def of(cls, rejected: RecipientRejected) -> DryRunRejectedPublic:
        return cls(
            row=rejected.row, user_id=rejected.uid, code=rejected.code, message=rejected.message
        )


class DuplicateRowPublic(ApiModel):
    row: int
    user_id: str
    first_row: int | None = Field(
        default=None,
        description="The row the user_id is imported from; absent: in the audience already.",
    )


class DryRunErrorPublic(ApiModel):
    code: str
    message: str


class DryRunPublic(ApiModel):
    dry_run_id: str
    s3_key: str = Field(description="POST .../import-csv {s3Key} to import the file.")
    status: str = Field(
        description="running; completed (what the import would do); failed (the import "
        "would fail whole with error, or the dry run could not finish)"
    )
    stage: str = Field(description="reading, checking_users (in the user directory), done")
    total_bytes: int = Field(description="The file's size.")
    processed_bytes: int = Field(description="Read so far (saved about every second).")
    processed_rows: int = Field(description="Data rows read so far.")
    audience_before: int = Field(description="Recipients in the campaign when it ran.")
    columns: list[str] = Field(description="The columns that become per-user variables.")
    rows: int = Field(description="Data rows (blank ones not counted), once completed.")
    accepted: int = Field(description="Rows the import would add as recipients.")
    duplicates: int = Field(description="Rows whose user_id came earlier or is in already.")
    duplicate_rows: list[DuplicateRowPublic] = Field(description="The first 1,000.")
    rejected_count: int
    rejected: list[DryRunRejectedPublic] = Field(description="The first 100.")
    rejected_csv: str = Field(description="Where to download every rejected row as CSV.")
    error: DryRunErrorPublic | None = None
    created_at: int
    updated_at: int
    expires_at: int = Field(description="Unix seconds: the dry run is forgotten then.")

    @classmethod
    def of(cls, view: DryRunView) -> DryRunPublic:
        run = view.run
        error = run.error
        return cls(
            dry_run_id=run.dry_run_id,
            s3_key=run.upload_key,
            status=run.status,
            stage=run.stage,
            total_bytes=run.size,
            processed_bytes=run.processed_bytes,
            processed_rows=run.processed_rows,
            audience_before=run.audience_before,
            columns=list(run.columns),
            rows=run.rows,
            accepted=run.accepted,
            duplicates=run.duplicates,
            duplicate_rows=[
                DuplicateRowPublic(row=d.row, user_id=d.uid, first_row=d.first_row)
                for d in run.duplicate_rows
            ],
            rejected_count=run.rejected_count,
            rejected=[DryRunRejectedPublic.of(r) for r in view.first_rejected],
            rejected_csv=f"{PREFIX}/{run.campaign_id}/dry-runs/{run.dry_run_id}/rejected.csv",
            error=DryRunErrorPublic(code=error.code, message=error.message) if error else None,
            created_at=run.created_at,
            updated_at=run.updated_at,
            expires_at=run.expires_at,
        )


_CSV_RESPONSE: dict[int | str, dict[str, object]] = {
    200: {
        "description": "Every rejected row: `row,user_id,code,message` (CRLF; a cell a "
        "spreadsheet would read as a formula starts with an apostrophe).",
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "row,user_id,code,message\r\n"
                "3,ghost,ERR_USER_NOT_FOUND,No such user.\r\n",
            }
        },
    },
    404: _NOT_FOUND,
    409: error_response("ERR_CONFLICT: the dry run is still running, or it failed"),
}


async def _csv(pages: AsyncIterator[list[RecipientRejected]]) -> AsyncIterator[str]:
    yield csv_line(REJECTED_CSV_HEADER)
    async for page in pages:
        yield "".join(csv_line((r.row, r.uid, r.code, r.message)) for r in page)


def dry_run_router(auth: Auth, runner: DryRunRunner) -> APIRouter:
    context = runner.context
    routes = APIRouter(
        prefix=PREFIX,
        tags=["Campaigns"],
        dependencies=[Depends(auth.require_app)],
        responses=CLIENT_ERRORS,
    )

    @routes.get(
        "/{campaign_id}/dry-runs/{dry_run_id}",
        response_model=Data[DryRunPublic],
        response_model_exclude_none=True,
        summary="A dry run of a CSV import: its progress, then what the import would do",
        responses={404: _NOT_FOUND},
    )
    async def get_dry_run(
        campaign_id: str, dry_run_id: str, app_id: str = Depends(auth.require_app)
    ) -> Data[DryRunPublic]:
        view = await dry_runs.dry_run_status(context, app_id, campaign_id, dry_run_id, now())
        return Data(data=DryRunPublic.of(view))

    @routes.get(
        "/{campaign_id}/dry-runs/{dry_run_id}/rejected.csv",
        response_class=StreamingResponse,
        summary="Every row a dry run rejected, with its number and reason, as CSV",
        responses=_CSV_RESPONSE,
    )
    async def rejected_csv(
        campaign_id: str, dry_run_id: str, app_id: str = Depends(auth.require_app)
    ) -> StreamingResponse:
        pages = await dry_runs.rejected_pages(context, app_id, campaign_id, dry_run_id, now())
        name = f"{dry_run_id}-rejected.csv"  # an id the gateway made: it was found
        return StreamingResponse(
            _csv(pages),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    return routes
