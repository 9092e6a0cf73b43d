"""`revops usage ingest FILE`: usage records from a CSV or JSON-lines file, in batches.

CSV columns: record_id, contract_id, metric, quantity, occurred_at (ISO 8601 with a time
zone). JSON lines: one record object per line. A file with any invalid record stores nothing
and lists each bad line with its field and rule; a file sent again stores nothing twice.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from starter.settings import get_settings

usage_app = typer.Typer(help="Usage records for metered billing.", no_args_is_help=True)
console = Console()
BATCH = 50_000


def read_items(path: Path) -> Iterator[Any]:
    with path.open(encoding="utf-8", newline="") as handle:
        if path.suffix.lower() == ".csv":
            yield from csv.DictReader(handle)
        else:
            for line in handle:
                if line.strip():
                    yield json.loads(line)


@usage_app.command("ingest")
def usage_ingest(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or JSON lines")],
) -> None:
    """Store the file's usage records (all of them, or none when any is invalid)."""
    from models.usage import UsageRecord, parse_usage_records
    from starter.cli import _connected, _run
    from starter.contract_actions import tell_contracts_usage_arrived
    from starter.usage_intake import store_usage

    try:
        items = list(read_items(file))
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as exc:
        console.print(f"[red]{file}: not readable as CSV or JSON lines: {exc}")
        raise typer.Exit(2) from None
    records, bad = parse_usage_records(items)
    if bad:
        line_of = 2 if file.suffix.lower() == ".csv" else 1  # CSV: header is line 1
        for b in bad:
            for p in b.problems:
                console.print(f"{file} line {b.index + line_of}: {p['field']}: {p['rule']}")
        console.print(f"[red]{len(bad)} invalid record(s): nothing stored")
        raise typer.Exit(1)

    async def run() -> int:
        totals = {"stored": 0, "duplicates": 0, "conflicts": 0}
        async with _connected(get_settings()) as (pool, client, _rules):
            for start in range(0, len(records), BATCH):
                batch: list[UsageRecord] = records[start : start + BATCH]
                result = await store_usage(pool, batch, source=f"file:{file.name}")
                await tell_contracts_usage_arrived(client, (r.contract_id for r in batch))
                totals["stored"] += result.stored
                totals["duplicates"] += result.duplicates
                totals["conflicts"] += len(result.conflicts)
                for conflict in result.conflicts:
                    console.print(
                        f"conflict: {conflict} was stored before with other content; kept the first"
                    )
        console.print(f"{len(records)} records: {totals['stored']} stored, "
                      f"{totals['duplicates']} duplicates, {totals['conflicts']} conflicts")  # fmt: skip
        return 0

    _run(run)
