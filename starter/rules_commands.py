"""`revops rules check` (validate, print the effective routing table) and `revops rules
replay` (what a changed rule set would route differently over recorded history)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from starter.rules_loader import RuleBook, RulesError, load_rule_book
from starter.settings import get_settings

rules_app = typer.Typer(help="The rules in rules/.", no_args_is_help=True)
console = Console()


def _load(directory: Path | None) -> RuleBook:
    try:
        return load_rule_book(directory or get_settings().rules_dir)
    except RulesError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None


def routing_table(book: RuleBook) -> Table:
    ops = book.operating
    table = Table("check", "severity", "owner (SLA)", "escalation", "calendar", "people")
    for check_id, route in sorted(ops.routes.items()):
        levels = ops.levels_for(check_id)
        owner, hours = levels[0]
        chain = " → ".join(f"{role.value} ({h:g}h)" for role, h in levels[1:]) or "-"
        people = ", ".join(c.person for c in ops.contacts(owner))
        table.add_row(check_id, route.severity, f"{owner.value} ({hours:g}h)", chain,
                      ops.calendar_for(owner).name, people)  # fmt: skip
    return table


@rules_app.command("check")
def rules_check(directory: Annotated[Path | None, typer.Option("--rules")] = None) -> None:
    """Validate the rules and print the effective routing table."""
    book = _load(directory)
    console.print(f"rules version {book.version}: valid")
    console.print(routing_table(book))
    for name, calendar in sorted(book.operating.calendars.items()):
        console.print(
            f"calendar {name}: {calendar.timezone}, days {calendar.working_days}, "
            f"{calendar.day_start:%H:%M}-{calendar.day_end:%H:%M}, "
            f"{len(calendar.holidays)} holidays loaded"
        )


@rules_app.command("replay")
def rules_replay(
    directory: Annotated[Path, typer.Option("--rules", help="The changed rules directory")],
    limit: Annotated[
        int | None, typer.Option("--limit", help="At most this many gate runs")
    ] = None,
) -> None:
    """Run recorded gate inputs through changed rules; report what would be routed differently."""
    from starter.cli import _connected, _run
    from starter.rules_replay import replay

    candidate = _load(directory)

    async def run() -> int:
        async with _connected(get_settings()) as (pool, _client, _rules):
            report = await replay(pool, candidate, limit)
        console.print(f"candidate rules {report.candidate_version}: {report.events} recorded "
                      f"gate runs replayed, {len(report.changed)} would be routed differently")  # fmt: skip
        for change in report.changed:
            console.print(
                f"{change.deal_id} (run {change.run_no}, recorded under {change.recorded_version})"
            )
            for line in change.lines:
                console.print(f"  {line}")
        return 0

    _run(run)
