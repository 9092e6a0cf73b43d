"""`revops export journal PERIOD` and `revops export schedules`: the files finance imports
into its accounting system, as CSV (exact) or XLSX. Layouts: `docs/exports.md`.

Both only read PostgreSQL (`DATABASE_URL`, else the embedded one of `revops up`) through one
connection; Temporal is not needed. Also runnable on its own:
`python -m starter.export_commands journal 2026-11`.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from models.money import minor_units
from starter import event_loop
from starter.audit_commands import database_location
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
from starter.settings import get_settings

if TYPE_CHECKING:
    import asyncpg

export_app = typer.Typer(
    help="Export the journal of a period and recognition schedules (CSV or XLSX).",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(width=None if sys.stdout.isatty() else 200)

CONNECT_TIMEOUT_SECONDS = 10.0
_CLI_NAMES = {
    "period": "PERIOD",
    "from": "--from",
    "to": "--to",
    "format": "--format",
    "out": "--out",
}

FormatOption = Annotated[
    str | None,
    typer.Option("--format", help="csv or xlsx (default: from --out's suffix, else csv)"),
]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", help="File or directory to write (default: a named file here)"),
]


class ExportCommandError(Exception):
    """The command could not run (database unreachable, not migrated, not allowed)."""


@asynccontextmanager
async def _connection() -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    import asyncpg

    url = get_settings().effective_database_url
    where = database_location(url)
    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_SECONDS)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise ExportCommandError(
            f"cannot reach PostgreSQL at {where} ({exc or type(exc).__name__}); "
            "is `revops up` running?"
        ) from exc
    try:
        yield conn
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise ExportCommandError(f"reading PostgreSQL at {where} failed: {exc}") from exc
    finally:
        await conn.close()


def _run(command: Callable[[], Coroutine[Any, Any, int]]) -> None:
    try:
        code = event_loop.run(command())
    except ExportCommandError as exc:
        console.print(Text(str(exc), style="red"), soft_wrap=True)
        code = 2
    except ExportError as exc:
        console.print(Text(f"refused: {exc}", style="red"), soft_wrap=True)
        code = 1
    raise typer.Exit(code)


def _bad_option(exc: ExportOptionError) -> typer.Exit:
    name = _CLI_NAMES.get(exc.option, exc.option)
    console.print(Text(f"{name}: {exc.rule} (got {exc.value!r})", style="red"), soft_wrap=True)
    return typer.Exit(2)


def _format(fmt: str | None, out: Path | None) -> ExportFormat:
    if fmt is not None:
        return parse_format(fmt)
    suffix = out.suffix.lower() if out is not None and not out.is_dir() else ""
    return ExportFormat.XLSX if suffix == ".xlsx" else ExportFormat.CSV


def _target(out: Path | None, default_name: str) -> Path:
    """Where to write: `out`, or the default name in `out` (a directory) or here."""
    if out is None:
        return Path.cwd() / default_name
    target = out / default_name if out.is_dir() else out
    if not target.parent.is_dir():
        raise ExportOptionError("out", "the directory to write into must exist", str(out))
    return target


def _amount(amount: Decimal, currency: str) -> str:
    return f"{amount:,.{minor_units(currency)}f} {currency}"


@export_app.command("journal")
def journal(
    period: Annotated[str, typer.Argument(help="The accounting period, YYYY-MM")],
    fmt: FormatOption = None,
    out: OutOption = None,
) -> None:
    """The journal of PERIOD, one row per journal line (refused if it does not balance)."""
    try:
        parse_period(period)
        export_format = _format(fmt, out)
        target = _target(out, journal_filename(period, export_format))
    except ExportOptionError as exc:
        raise _bad_option(exc) from None

    async def run() -> int:
        async with _connection() as conn:
            summary = await export_journal(conn, period, export_format, target)
        console.print(
            f"journal {period}: {summary.lines:,} lines in {summary.entries:,} entries "
            f"written to {target}",
            highlight=False,
            soft_wrap=True,
        )
        for currency, t in sorted(summary.totals.items()):
            console.print(
                f"  {currency}  debits {_amount(t.debits, currency)} = "
                f"credits {_amount(t.credits, currency)}",
                highlight=False,
            )
        return 0

    _run(run)


@export_app.command("schedules")
def schedules(
    deal: Annotated[str | None, typer.Option("--deal", help="Only this deal id")] = None,
    period_from: Annotated[
        str | None, typer.Option("--from", help="First period, YYYY-MM (inclusive)")
    ] = None,
    period_to: Annotated[
        str | None, typer.Option("--to", help="Last period, YYYY-MM (inclusive)")
    ] = None,
    all_versions: Annotated[
        bool, typer.Option("--all-versions", help="Every schedule version, not only the latest")
    ] = False,
    fmt: FormatOption = None,
    out: OutOption = None,
) -> None:
    """Recognition schedules, one row per entry (the latest version of each deal's)."""
    try:
        which = ScheduleFilter(deal, period_from, period_to, all_versions)
        export_format = _format(fmt, out)
        target = _target(out, schedules_filename(which, export_format))
    except ExportOptionError as exc:
        raise _bad_option(exc) from None

    async def run() -> int:
        async with _connection() as conn:
            summary = await export_schedules(conn, which, export_format, target)
        versions = "all versions" if all_versions else "latest versions"
        console.print(
            f"recognition schedules: {summary.entries:,} entries of {len(summary.deals):,} "
            f"deals ({versions}) written to {target}",
            highlight=False,
            soft_wrap=True,
        )
        for currency, total in sorted(summary.totals.items()):
            console.print(f"  {currency}  {_amount(total, currency)}", highlight=False)
        if deal is not None and summary.entries == 0:
            console.print(f"no schedule entries for deal {deal} in that range", highlight=False)
        return 0

    _run(run)


if __name__ == "__main__":
    export_app()
