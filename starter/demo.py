"""`revops demo`: run the sample book through the product and show where each deal stands."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from temporalio.client import Client
from temporalio.service import RPCError

from models.deal_flow import DealStage, DealState
from starter.intake import Intake
from starter.services import Services
from starter.settings import PROJECT_ROOT
from workflows.deal import DealWorkflow

BOOK = PROJECT_ROOT / "starter" / "sample_data" / "book.json"
SETTLED = {DealStage.COMPLETED, DealStage.REJECTED, DealStage.AWAITING_RESOLUTION}


def in_waves(deals: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """A customer's later orders go in a later wave, so their gates see the earlier contract
    (as they would in life, where orders arrive weeks apart)."""
    waves: list[list[dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for deal in deals:
        customer = str(deal.get("customer", {}).get("customer_id"))
        wave = seen.get(customer, -1) + 1
        seen[customer] = wave
        while len(waves) <= wave:
            waves.append([])
        waves[wave].append(deal)
    return waves


async def run_book(services: Services, console: Console) -> list[DealState]:
    """Submit the sample book wave by wave and wait for each wave's outcomes."""
    deals = json.loads(BOOK.read_text(encoding="utf-8"))
    states: list[DealState] = []
    for wave in in_waves(deals):
        ids = await submit_deals(services, wave, console)
        states += await wait_for_outcomes(services.client, ids, console)
    return states


async def submit_deals(
    services: Services, deals: list[dict[str, Any]], console: Console
) -> list[str]:
    """Submit deals through the same intake as the file door; returns the deal ids."""
    intake = Intake(services.pool, services.client, services.rules, services.settings.task_queue)
    ids, started = [], 0
    for deal in deals:
        result = await intake.submit_deal(
            "file", deal, json.dumps(deal, sort_keys=True), submitted_by="demo"
        )
        if result.problems:
            console.print(f"[red]{deal.get('deal_id')}: {result.message}")
            continue
        started += result.started
        ids.append(str(result.deal_id))
    console.print(f"Submitted {len(deals)} deals from {BOOK.name}: {started} started, "
                  f"{len(ids) - started} already known (duplicates start nothing).")  # fmt: skip
    return ids


async def query_state(client: Client, deal_id: str) -> DealState | None:
    try:
        return await client.get_workflow_handle_for(DealWorkflow.run, f"deal-{deal_id}").query(
            DealWorkflow.state
        )
    except RPCError:
        return None


async def wait_for_outcomes(
    client: Client, ids: list[str], console: Console, timeout: float = 300
) -> list[DealState]:
    """Poll the `state` query until every deal completed, was rejected or waits on a person."""
    deadline = time.monotonic() + timeout
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Waiting for outcomes", total=len(ids))
        while True:
            states = await asyncio.gather(*(query_state(client, i) for i in ids))
            settled = [s for s in states if s is not None and s.stage in SETTLED]
            progress.update(task, completed=len(settled))
            if len(settled) == len(ids) or time.monotonic() > deadline:
                return [s for s in states if s is not None]
            await asyncio.sleep(0.5)


def outcome_table(states: list[DealState]) -> Table:
    table = Table(title="Closed-won deals: where each one stands", show_lines=False)
    for column in (
        "deal",
        "customer",
        "stage",
        "invoice",
        "amount",
        "recognised now",
        "deferred",
        "open exception",
        "owner",
    ):
        table.add_column(
            column,
            justify="right" if column in {"amount", "recognised now", "deferred"} else "left",
        )
    for s in sorted(states, key=lambda s: s.deal_id):
        inv, bal = s.invoice, s.balances
        case = s.open_cases[0] if s.open_cases else None
        table.add_row(
            s.deal_id,
            s.deal.customer.name if s.deal else "",
            s.stage.value,
            inv.number if inv else ("-" if s.stage is not DealStage.COMPLETED else "on delivery"),
            str(inv.total) if inv else "",
            str(bal.recognised) if bal else "",
            str(bal.deferred_revenue) if bal else "",
            ", ".join(c.check_id for c in s.open_cases),
            case.owner_role.value if case else "",
        )
    return table
