"""The file door: `revops deal submit FILE` with a JSON deal, a JSON list, or the CSV layout."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
from temporalio.client import Client

from models.rules import RuleSet
from starter.csv_intake import CsvIntakeError, parse_deals_csv
from starter.intake import Intake, IntakeResult, content_id, parse_json_text


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
    """The whole file is stored raw first; then each deal, as the JSON its rows make."""
    try:
        parsed = parse_deals_csv(text)
    except CsvIntakeError as exc:
        problems = [{"field": "file", "rule": str(e), "input": ""} for e in exc.errors]
        return [await intake.submit_invalid("file", text, "text/csv", problems)]
    await intake.store_raw("file", content_id(text), "text/csv", text)
    results = []
    for deal in parsed:
        if deal.data is None:
            problems = [{"field": "file", "rule": str(e), "input": ""} for e in deal.errors]
            raw = json.dumps({"deal_id": deal.deal_id, "csv_rows": list(deal.rows)})
            results.append(await intake.submit_invalid("file", raw, "application/json", problems))
        else:
            raw = json.dumps(deal.data, sort_keys=True, default=str)
            results.append(await intake.submit_deal("file", deal.data, raw, submitted_by="cli"))
    return results
