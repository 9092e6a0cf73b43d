"""The file door: `revops deal submit FILE` with a JSON deal, a JSON list, or the CSV layout."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
from temporalio.client import Client

from models.rules import RuleSet
from starter.csv_intake import CsvIntakeError, parse_deals_csv
from starter.intake import Intake, IntakeResult, parse_json_text


async def submit_file(
    path: Path, pool: asyncpg.Pool, client: Client, rules: RuleSet, task_queue: str
) -> list[IntakeResult]:
    intake = Intake(pool, client, rules, task_queue)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        return await _submit_csv(intake, text)
    payload, problems = parse_json_text(text)
    if problems:
        return [await intake.submit_invalid("file", text, "application/json", problems)]
    deals = payload if isinstance(payload, list) else [payload]
    return [
        await intake.submit_deal("file", d, json.dumps(d, sort_keys=True), submitted_by="cli")
        for d in deals
    ]


async def _submit_csv(intake: Intake, text: str) -> list[IntakeResult]:
    try:
        parsed = parse_deals_csv(text)
    except CsvIntakeError as exc:
        problems = [
            {"field": f"row {e.row}" if e.row else "file", "rule": e.message, "input": ""}
            for e in exc.errors
        ]
        return [await intake.submit_invalid("file", text, "text/csv", problems)]
    results = []
    lines = text.splitlines()
    for deal in parsed:
        raw = "\n".join([lines[0], *(lines[r - 1] for r in deal.rows if r - 1 < len(lines))])
        if deal.data is None:
            problems = [{"field": f"row {e.row}, column {e.column}" if e.column else f"row {e.row}",
                         "rule": e.message, "input": ""} for e in deal.errors]  # fmt: skip
            results.append(await intake.submit_invalid("file", raw, "text/csv", problems))
        else:
            results.append(await intake.submit_deal("file", deal.data, raw, submitted_by="cli"))
    return results
