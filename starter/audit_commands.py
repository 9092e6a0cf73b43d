"""`revops audit verify` and `revops audit show SUBJECT`: prove the audit trail's hash chain
intact, and read one subject's history. Both only read, through one connection with the
project's settings (`DATABASE_URL`, else the embedded PostgreSQL of `revops up`).

Also runnable on its own: `python -m starter.audit_commands verify`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from starter import event_loop
from starter.audit_trail import AuditRow, ChainReport, subject_history, verify_chain
from starter.settings import get_settings

if TYPE_CHECKING:
    import asyncpg

audit_app = typer.Typer(
    help="Check the audit trail's hash chain and read a subject's history.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(width=None if sys.stdout.isatty() else 200)

CONNECT_TIMEOUT_SECONDS = 10.0


class AuditCommandError(Exception):
    """The command could not run (database unreachable, not migrated, not allowed)."""


def database_location(url: str) -> str:
    """`user@host:port/db` of a database URL, without its password."""
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{user}{parts.hostname or 'localhost'}{port}{parts.path}"


@asynccontextmanager
async def _connection() -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    import asyncpg

    url = get_settings().effective_database_url
    where = database_location(url)
    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_SECONDS)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise AuditCommandError(
            f"cannot reach PostgreSQL at {where} ({exc or type(exc).__name__}); "
            "is `revops up` running?"
        ) from exc
    try:
        yield conn
    except asyncpg.UndefinedTableError as exc:
        raise AuditCommandError(
            f"the database at {where} has no audit trail ({exc}): run the migrations "
            "(`revops up` does)"
        ) from exc
    except asyncpg.InsufficientPrivilegeError as exc:
        raise AuditCommandError(f"not allowed to read the audit trail at {where}: {exc}") from exc
    except (OSError, asyncpg.ConnectionDoesNotExistError) as exc:
        raise AuditCommandError(f"lost the connection to PostgreSQL at {where} ({exc})") from exc
    finally:
        await conn.close()


def _run(command: Callable[[], Coroutine[Any, Any, int]]) -> None:
    try:
        code = event_loop.run(command())
    except AuditCommandError as exc:
        console.print(Text(str(exc), style="red"), soft_wrap=True)
        code = 2
    raise typer.Exit(code)


# --- verify ------------------------------------------------------------------------------------


def _seq_range(report: ChainReport) -> str:
    if report.first_seq is None or report.last_seq is None:
        return ""
    return f" (seq {report.first_seq:,} to {report.last_seq:,})"


def print_report(report: ChainReport) -> None:
    checked = f"{report.rows_checked:,}{_seq_range(report)}"
    if report.ok:
        console.print(
            "[green]audit trail intact[/]: every row's hash matches its contents and every row "
            "links to the one before"
        )
    else:
        console.print(
            f"[red]audit trail BROKEN[/]: {report.broken_rows:,} of {report.rows_checked:,} "
            "rows fail the check"
        )
    console.print(f"rows checked   {checked}", highlight=False, soft_wrap=True)
    if report.rows_checked == 0:
        issued = report.sequence_last_value
        console.print(
            "no audit events yet"
            + (
                f", although audit_event_seq has issued numbers up to {issued:,}: if events "
                "were written before, they have been removed"
                if issued
                else ""
            ),
            highlight=False,
            soft_wrap=True,
        )
    if report.first_broken is not None:
        console.print(Text(f"first broken   {report.first_broken.describe()}"), soft_wrap=True)
    if report.unused_seq_numbers:
        console.print(
            f"unused seq     {report.unused_seq_numbers:,} between rows (rolled-back or "
            "repeated writes draw numbers too; a deleted row shows as a broken prev_hash link)",
            highlight=False,
            soft_wrap=True,
        )
    if report.last_seq is not None:
        console.print(
            f"newest row     seq {report.last_seq:,}, hash {report.last_hash} (note it down: "
            "removing the newest rows shows only against a recorded head)",
            highlight=False,
            soft_wrap=True,
        )
    if not report.ok:
        console.print(
            "Do not write over the damage: keep the database as it is and follow "
            "docs/operators.md, 'Checking the audit trail'."
        )


@audit_app.command("verify")
def verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Recompute every audit event's hash and check the chain; exit 1 if it is broken."""

    async def run() -> int:
        async with _connection() as conn:
            report = await verify_chain(conn)
        if as_json:
            print(json.dumps(report.to_json(), indent=2))
        else:
            print_report(report)
        return 0 if report.ok else 1

    _run(run)


# --- show --------------------------------------------------------------------------------------


def _why(row: AuditRow) -> Text:
    parts = [p for p in (row.reason_code, row.note) if p]
    return Text("\n".join(parts) if parts else "-")


def _change(row: AuditRow) -> Text:
    lines = []
    if row.before_json is not None:
        lines.append(f"before: {row.before_json}")
    if row.after_json is not None:
        lines.append(f"after: {row.after_json}")
    return Text("\n".join(lines) if lines else "-")


def history_table(subject: str, rows: list[AuditRow]) -> Table:
    table = Table(title=f"audit trail of {subject}: {len(rows)} events", title_justify="left")
    table.add_column("seq", justify="right", no_wrap=True)
    table.add_column("when (UTC)", no_wrap=True)
    table.add_column("who", overflow="fold")
    table.add_column("what", no_wrap=True)
    table.add_column("why", overflow="fold")
    table.add_column("rules", no_wrap=True)
    table.add_column("workflow / run", overflow="fold")
    table.add_column("before / after", overflow="fold", ratio=1)
    for row in rows:
        table.add_row(
            str(row.seq),
            Text(row.when.replace("T", " ")),
            Text(row.actor),
            Text(row.action),
            _why(row),
            Text(row.rules_version or "-"),
            Text("\n".join(p for p in (row.workflow_id, row.run_id) if p) or "-"),
            _change(row),
        )
    return table


@audit_app.command("show")
def show(
    subject: Annotated[
        str,
        typer.Argument(help="deal:<deal id>, a bare deal id, or a case id (case-deal-...)"),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the events as JSON")] = False,
) -> None:
    """A subject's audit history in order: who, what, when, why, rules, workflow, before/after."""

    async def run() -> int:
        async with _connection() as conn:
            rows = await subject_history(conn, subject)
        if as_json:
            print(json.dumps([row.to_json() for row in rows], indent=2, ensure_ascii=False))
            return 0 if rows else 1
        if not rows:
            console.print(Text(f"no audit events for {subject}", style="red"))
            return 1
        console.print(history_table(subject, rows))
        altered = [row.seq for row in rows if not row.hash_matches]
        if altered:
            console.print(
                Text(
                    f"seq {', '.join(map(str, altered))}: hash does not match contents; "
                    "run `revops audit verify`",
                    style="red",
                )
            )
        return 0

    _run(run)


if __name__ == "__main__":
    audit_app()
