"""Routes of CSV audience imports (CometChat's paths and status codes):

- ``POST /v3/campaigns/campaigns/{id}/recipients/upload-url`` → 201 ``{uploadUrl, s3Key,
  expiresAt}``; the client PUTs the file to ``uploadUrl`` (``PUT /uploads/{key}``,
  outside ``/v3``: its signed query replaces the apikey; not in the OpenAPI document, as
  an S3 URL would not be), or, with an object store configured, a presigned URL of the
  store (``objects``), then ``POST .../{id}/import-csv {s3Key}`` → 202;
- ``POST .../{id}/recipients/csv`` (multipart, field ``file``) → 202, or a synchronous
  400 when the file's header is refused;
- ``GET .../{id}/import-status``: the campaign's latest import;
- with ``dryRun`` (``import-csv {s3Key, dryRun: true}``, ``recipients/csv?dryRun=true``),
  a dry run of the import in its place, read at ``dry_run_routes``'s paths.

Uploads are up to 50 MiB: :func:`limit_uploads` gives these two routes a body limit of
their own in place of every request's (``clarion_shared.strict_input``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from pydantic import Field
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clarion_shared.api import CLIENT_ERRORS, ApiModel, Data, error_response
from clarion_shared.caller import CallerGone
from clarion_shared.errors import ApiError
from clarion_shared.ids import now
from clarion_shared.strict_input import (
    InputLimits,
    StrictInputMiddleware,
    parameter_problems,
    refusal,
)

from ..idempotency.domain import StoredResponse
from ..web import Auth, IdempotencyKey, Responder, json_response
from . import imports
from .dry_run_routes import DryRunStarted, dry_run_router
from .dry_run_runner import DryRunRunner
from .imports import CsvImport, ImportRunner
from .uploads import UploadSigner, UploadTooLarge, UploadUrl, file_part, receive_upload

# What a multipart body may hold besides its file (boundaries, part headers).
MULTIPART_SLACK = 64 * 1024
_UPLOAD_ROUTES = (
    ("PUT", re.compile(r"/uploads/[^/]+")),
    ("POST", re.compile(r"/v3/campaigns/campaigns/[^/]+/recipients/csv")),
    ("POST", re.compile(r"/dashboard/apps/[^/]+/campaigns/[^/]+/audience/csv")),
)


class UploadUrlPublic(ApiModel):
    upload_url: str = Field(description="PUT the CSV here, without apikey, once.")
    s3_key: str = Field(description="The file's key, for import-csv.")
    expires_at: int = Field(description="Unix seconds: the PUT is refused (403) after.")

    @classmethod
    def of(cls, issued: UploadUrl) -> UploadUrlPublic:
        return cls(upload_url=issued.url, s3_key=issued.key, expires_at=issued.expires_at)


class UploadPublic(ApiModel):
    s3_key: str
    size: int


class CsvImportRequest(ApiModel):
    # S3's own limit on keys (the store's keys carry a prefix, the app and the campaign).
    s3_key: str = Field(min_length=1, max_length=1024, description="From upload-url.")
    dry_run: bool = Field(
        default=False, description="Clarion: only work out what the import would do."
    )


class ImportStarted(ApiModel):
    import_id: str


class ImportErrorPublic(ApiModel):
    code: str
    message: str


class ImportRejectedPublic(ApiModel):
    row: int | None = Field(default=None, description="CSV record number (header = 1).")
    user_id: str | None = None
    code: str
    message: str


class ImportStatusPublic(ApiModel):
    import_id: str
    status: str = Field(description="processing, completed or failed")
    rows: int = Field(description="Data rows read (blank ones not counted).")
    imported: int
    duplicates: int
    rejected: list[ImportRejectedPublic] = Field(description="The first 1,000.")
    rejected_count: int
    error: ImportErrorPublic | None = Field(
        default=None, description="Why the whole file failed (nothing of it was imported)."
    )
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, job: CsvImport) -> ImportStatusPublic:
        return cls(
            import_id=job.import_id,
            status=job.status,
            rows=job.rows,
            imported=job.imported,
            duplicates=job.duplicates,
            rejected=[
                ImportRejectedPublic(row=r.row, user_id=r.uid, code=r.code, message=r.message)
                for r in job.rejected
            ],
            rejected_count=job.rejected_count,
            error=ImportErrorPublic(code=job.error.code, message=job.error.message)
            if job.error
            else None,
            created_at=job.created_at,
            updated_at=job.updated_at,
        )


_NOT_FOUND = error_response("ERR_NOT_FOUND: no such campaign")
_BUSY = error_response(
    "ERR_CONFLICT: another import or change of the audience is running, or the "
    "Idempotency-Key was used with another body or has not answered yet"
)
_TOO_LARGE = error_response("ERR_PAYLOAD_TOO_LARGE: the CSV is over 50 MiB")
_CSV_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "UTF-8 CSV with a user_id column, up to 50 MiB.",
                        }
                    },
                }
            }
        },
    }
}
_PUT_HELP = """\
PUT the CSV to `uploadUrl` as the request body, without `apikey`: 200 `{data: {s3Key,
size}}`; 403 `ERR_FORBIDDEN` when the URL is not valid or has expired, 409
`ERR_CONFLICT` when it was used already, 413 `ERR_PAYLOAD_TOO_LARGE` over 50 MiB. Then
`POST .../import-csv {s3Key}`. Where an S3-compatible store is configured, `uploadUrl` is
its presigned URL: the store answers the PUT (403 once the URL expired), and a file
over 50 MiB is refused by `import-csv` (413 `ERR_PAYLOAD_TOO_LARGE`)."""

_DRY_RUN_HELP = """\
Clarion: with `dryRun` true, nothing is imported: 202 `{data: {dryRunId, s3Key, status}}`,
and `GET .../dry-runs/{dryRunId}` shows its progress, then what the import would do (rows,
accepted, duplicates, rejected rows with their reasons; the import's failure, if it would
fail whole). The file is kept: `import-csv {s3Key}` with its `s3Key` imports it."""


def import_router(  # long: one closure per route, all on the same dependencies
    auth: Auth,
    responder: Responder,
    runner: ImportRunner,
    signer: UploadSigner,
    dry_runs: DryRunRunner,
) -> APIRouter:
    context = runner.context
    campaigns = APIRouter(
        prefix="/v3/campaigns/campaigns",
        tags=["Campaigns"],
        dependencies=[Depends(auth.require_app)],
        responses=CLIENT_ERRORS,
    )

    @campaigns.post(
        "/{campaign_id}/recipients/upload-url",
        status_code=201,
        response_model=Data[UploadUrlPublic],
        summary="Get a URL to upload a CSV of recipients to (one PUT, 15 minutes)",
        description=_PUT_HELP,
        responses={
            404: _NOT_FOUND,
            400: error_response("ERR_CAMPAIGN_STATUS: the campaign is not a draft"),
            409: error_response(
                "ERR_CONFLICT: the Idempotency-Key was used with another body or has not "
                "answered yet"
            ),
        },
    )
    async def upload_url(
        campaign_id: str,
        request: Request,
        app_id: str = Depends(auth.require_app),
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        async def call() -> StoredResponse:
            issued = await imports.issue_upload_url(context, signer, app_id, campaign_id, now())
            return json_response(Data(data=UploadUrlPublic.of(issued)), 201)

        return await responder.respond(request, app_id, idempotency_key, call)

    @campaigns.post(
        "/{campaign_id}/import-csv",
        status_code=202,
        response_model=Data[ImportStarted] | Data[DryRunStarted],
        summary="Import the CSV uploaded to an upload URL (in the background)",
        description=_DRY_RUN_HELP,
        responses={
            404: error_response("ERR_NOT_FOUND: no such campaign, or no such s3Key for it"),
            400: error_response(
                "ERR_CAMPAIGN_STATUS (not a draft), ERR_CSV_INVALID (nothing was uploaded "
                "with the s3Key) or ERR_VALIDATION"
            ),
            409: _BUSY,
            413: _TOO_LARGE,
            503: error_response("ERR_UNAVAILABLE: the S3 object store is unreachable"),
        },
    )
    async def import_csv(
        campaign_id: str,
        body: CsvImportRequest,
        request: Request,
        app_id: str = Depends(auth.require_app),
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        async def call() -> StoredResponse:
            if body.dry_run:
                run = await dry_runs.begin(app_id, campaign_id, body.s3_key, now())
                return json_response(Data(data=DryRunStarted.of(run)), 202)
            job = await runner.begin(app_id, campaign_id, body.s3_key, now())
            return json_response(Data(data=ImportStarted(import_id=job.import_id)), 202)

        return await responder.respond(request, app_id, idempotency_key, call)

    @campaigns.post(
        "/{campaign_id}/recipients/csv",
        status_code=202,
        response_model=Data[ImportStarted] | Data[DryRunStarted],
        summary="Upload a CSV of recipients and import it (in the background)",
        description="A header without a user_id column is refused at once (400 "
        "ERR_CSV_INVALID); the rest of the file is judged by the import (import-status). "
        + _DRY_RUN_HELP,
        openapi_extra=_CSV_FORM,
        responses={
            404: _NOT_FOUND,
            400: error_response(
                "ERR_CSV_INVALID (the header is refused), ERR_CAMPAIGN_STATUS (not a draft) "
                "or ERR_VALIDATION (not multipart/form-data with a field file)"
            ),
            409: error_response(
                "ERR_CONFLICT: another import or change of the audience is running"
            ),
            413: _TOO_LARGE,
        },
    )
    async def upload_csv(
        campaign_id: str,
        request: Request,
        app_id: str = Depends(auth.require_app),
        dry_run: bool = Query(False, alias="dryRun", description="Clarion: a dry run."),
    ) -> Data[ImportStarted] | Data[DryRunStarted]:
        content = file_part(request.headers.get("content-type"), _body(request))
        if dry_run:
            run = await dry_runs.begin_upload(app_id, campaign_id, content, now())
            return Data(data=DryRunStarted.of(run))
        job = await runner.begin_upload(app_id, campaign_id, content, now())
        return Data(data=ImportStarted(import_id=job.import_id))

    @campaigns.get(
        "/{campaign_id}/import-status",
        response_model=Data[ImportStatusPublic],
        response_model_exclude_none=True,
        summary="The state of the campaign's latest CSV import",
        responses={404: error_response("ERR_NOT_FOUND: no such campaign, or it had no import")},
    )
    async def import_status(
        campaign_id: str, app_id: str = Depends(auth.require_app)
    ) -> Data[ImportStatusPublic]:
        job = await imports.import_status(context, app_id, campaign_id)
        return Data(data=ImportStatusPublic.of(job))

    uploads = APIRouter(include_in_schema=False)

    @uploads.put("/uploads/{key}")
    async def put_upload(
        key: str, request: Request, expires: str | None = None, signature: str | None = None
    ) -> Data[UploadPublic]:
        storage = context.storage
        upload = await receive_upload(
            storage.keys,
            storage.chunks,
            signer,
            key,
            expires,
            signature,
            _body(request),
            now(),
            context.limits.max_bytes,
        )
        return Data(data=UploadPublic(s3_key=upload.key, size=upload.size or 0))

    routes = APIRouter()
    routes.include_router(campaigns)
    routes.include_router(dry_run_router(auth, dry_runs))
    routes.include_router(uploads)
    return routes


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The request's body as it arrives; a client that leaves stops the work."""
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect as exc:
        raise CallerGone() from exc


def _is_upload(scope: Scope) -> bool:
    method, path = scope.get("method", ""), scope.get("path", "")
    return any(method == m and pattern.fullmatch(path) for m, pattern in _UPLOAD_ROUTES)


class _UploadInput:
    """The strict input checks of every request, with a body limit of their own for the
    two upload routes (``upload_max_bytes`` and room for multipart framing); a body is
    not read here, so a file streams on to the route."""

    def __init__(
        self, app: ASGIApp, limits: InputLimits, api: FastAPI, upload_max_bytes: int
    ) -> None:
        self.app = app
        self.api = api
        self.strict = StrictInputMiddleware(app, limits, api)
        self.file_limit = upload_max_bytes
        self.limit = upload_max_bytes + MULTIPART_SLACK

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_upload(scope):
            await self.strict(scope, receive, send)
            return
        problems = parameter_problems(scope, self.api)
        if problems:
            await refusal(problems)(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._too_large().response()(scope, receive, send)
            return
        await self.app(scope, self._capped(receive), send)

    def _too_large(self) -> ApiError:
        exc = UploadTooLarge(self.file_limit)
        return ApiError(413, "ERR_PAYLOAD_TOO_LARGE", exc.message, exc.dev_message, exc.details)

    def _capped(self, receive: Receive) -> Receive:
        size = 0

        async def capped() -> Message:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            if size > self.limit:
                raise UploadTooLarge(self.file_limit)
            return message

        return capped


def limit_uploads(app: FastAPI, upload_max_bytes: int) -> None:
    """Let the upload routes' bodies through up to ``upload_max_bytes``: the strict
    input middleware ``http.create_app`` installed is swapped for one that keeps every
    other request as it was. Before the app first runs (its middleware is built then)."""
    for at, entry in enumerate(app.user_middleware):
        factory: object = entry.cls
        if factory is StrictInputMiddleware:
            limits, api = entry.kwargs["limits"], entry.kwargs["api"]
            assert isinstance(limits, InputLimits)
            assert isinstance(api, FastAPI)
            app.user_middleware[at] = Middleware(
                _UploadInput, limits=limits, api=api, upload_max_bytes=upload_max_bytes
            )
            return
    raise RuntimeError("the strict input middleware is not installed")
