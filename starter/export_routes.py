"""`GET /exports/journal` and `GET /exports/schedules`: the finance exports as attachments.

Same API-key authentication as the rest of the API. Each file is written completely to a
temporary directory first (read in batches from one database snapshot), so a refusal is an
HTTP error and never a truncated download; the directory is removed once the file is sent.
Layouts: `docs/exports.md`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import asyncpg
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from starter.api import Context, Principal
from starter.exports import (
    ExportError,
    ExportFormat,
    ExportOptionError,
    ScheduleFilter,
    export_journal,
    export_schedules,
    journal_filename,
    parse_format,
    parse_period,
    schedules_filename,
)

if TYPE_CHECKING:
    from activities.db import DbConnection

export_router = APIRouter(prefix="/exports", tags=["exports"])

FormatParam = Annotated[str, Query(alias="format", description="csv or xlsx")]


def _bad_request(exc: ExportOptionError) -> HTTPException:
    problem = {"field": exc.option, "rule": exc.rule, "input": repr(exc.value)[:80]}
    return HTTPException(422, [problem])


def _attachment(path: Path, fmt: ExportFormat, workdir: Path, rows: int) -> FileResponse:
    return FileResponse(
        path,
        media_type=fmt.media_type,
        filename=path.name,  # Content-Disposition: attachment; filename="..."
        headers={"X-Export-Rows": str(rows)},
        background=BackgroundTask(shutil.rmtree, workdir, ignore_errors=True),
    )


async def _write(
    conn: DbConnection, which: str | ScheduleFilter, fmt: ExportFormat, path: Path
) -> int:
    if isinstance(which, ScheduleFilter):
        return (await export_schedules(conn, which, fmt, path)).entries
    return (await export_journal(conn, which, fmt, path)).lines


async def _export(
    ctx: Context, fmt: ExportFormat, name: str, which: str | ScheduleFilter
) -> FileResponse:
    """Write the export (a period's journal, or the schedules `which` selects) into a fresh
    temporary directory and answer with it as an attachment."""
    workdir = Path(tempfile.mkdtemp(prefix="revops-export-"))
    try:
        async with ctx.pool.acquire() as conn:
            rows = await _write(conn, which, fmt, workdir / name)
    except ExportError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise HTTPException(409, f"refused: {exc}") from exc
    except (OSError, asyncpg.PostgresError) as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise HTTPException(503, "database unavailable; retry later") from exc
    return _attachment(workdir / name, fmt, workdir, rows)


@export_router.get(
    "/journal",
    response_class=FileResponse,
    summary="The journal of a period, one row per journal line",
)
async def journal_export(
    ctx: Context,
    who: Principal,
    period: Annotated[str, Query(description="The accounting period, YYYY-MM")],
    fmt: FormatParam = "csv",
) -> FileResponse:
    del who
    try:
        parse_period(period)
        export_format = parse_format(fmt)
    except ExportOptionError as exc:
        raise _bad_request(exc) from exc
    return await _export(ctx, export_format, journal_filename(period, export_format), period)


@export_router.get(
    "/schedules",
    response_class=FileResponse,
    summary="Recognition schedules, one row per schedule entry",
)
async def schedules_export(
    ctx: Context,
    who: Principal,
    deal: Annotated[str | None, Query(description="Only this deal id")] = None,
    period_from: Annotated[str | None, Query(alias="from", description="YYYY-MM")] = None,
    period_to: Annotated[str | None, Query(alias="to", description="YYYY-MM")] = None,
    all_versions: Annotated[bool, Query(description="Every version, not the latest")] = False,
    fmt: FormatParam = "csv",
) -> FileResponse:
    del who
    try:
        which = ScheduleFilter(deal, period_from, period_to, all_versions)
        export_format = parse_format(fmt)
    except ExportOptionError as exc:
        raise _bad_request(exc) from exc
    return await _export(ctx, export_format, schedules_filename(which, export_format), which)
