"""Usage ingestion throughput against PostgreSQL's own floor, measured in the same run.

    python -m bench.usage                  # 1,000,000 records in batches of 50,000
    python -m bench.usage --records 200000 --batch 20000

Three phases on one embedded PostgreSQL (a fresh one in a temporary directory, or
DATABASE_URL):
1. baseline: the same rows written with a bare COPY into a table of the same shape with the
   same primary key (what PostgreSQL can do at best, no deduplication);
2. store: `starter.usage_intake.store_usage` (COPY into a staging table, then one
   INSERT ... SELECT ... ON CONFLICT DO NOTHING per batch, conflicts looked up), on records
   already validated;
3. end to end: JSON items validated into `UsageRecord`s (pydantic), then stored, as the API
   and `revops usage ingest` do; and the whole batch once more (all duplicates);
4. rate: every contract's usage not yet invoiced is rated and invoiced as the contract
   workflow does at the close of the month (`ContractActivities.invoice_metered`: one
   transaction per contract marking its records, numbering, storing and posting the invoice
   and recognising the usage), for every record stored above.
Targets (issue 5): ingest and rate at least 20,000 records/s and `store` within 3x the
baseline.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg

from activities.contracts import ContractActivities, MeteredInput
from activities.db import as_owner, create_pool
from models.deal import DealSubmission
from models.usage import UsageRecord, parse_usage_records, usage_row
from starter import event_loop
from starter.database import migrate_async
from starter.embedded_postgres import EmbeddedPostgres
from starter.ports import free_ports
from starter.rules_loader import load_rules
from starter.settings import PROJECT_ROOT
from starter.usage_intake import store_usage


def items(count: int, run: str) -> list[dict[str, Any]]:
    """Usage as a sender would post it: 1,000 contracts, 4 metrics, a month of timestamps."""
    return [
        {"record_id": f"{run}-{n:08d}", "contract_id": f"bench-contract-{n % 1000:04d}",
         "metric": ("api_calls", "gb_stored", "seats", "jobs")[n % 4],
         "quantity": f"{(n % 97) + 0.25:.2f}",
         "occurred_at": f"2026-11-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00+00:00"}
        for n in range(count)
    ]  # fmt: skip


METRICS = ("api_calls", "gb_stored", "seats", "jobs")


def usage_contract(contract_id: str) -> DealSubmission:
    """The sample book's usage contract (hs-deal-90423, GBP) under another id, with one usage
    line per metric of `items`."""
    import json

    book = json.loads((PROJECT_ROOT / "starter/sample_data/book.json").read_text("utf-8"))
    deal = DealSubmission.model_validate(next(d for d in book if d["deal_id"] == "hs-deal-90423"))
    template = deal.lines[0]
    lines = [template.model_copy(update={"line_id": f"L{i + 1}", "usage_metric": metric,
                                         "product": f"Usage: {metric}"})
             for i, metric in enumerate(METRICS)]  # fmt: skip
    return deal.model_copy(update={"deal_id": contract_id, "lines": lines})


async def rate_all(pool: asyncpg.Pool, contracts: int) -> tuple[float, int]:
    """Rate and invoice every contract's usage through November 2026, one contract at a time
    (as each contract workflow does); the records rated."""
    from datetime import date

    rules = load_rules(PROJECT_ROOT / "rules")
    activities = ContractActivities(pool)
    deals = [usage_contract(f"bench-contract-{n:04d}") for n in range(contracts)]
    started = time.perf_counter()
    for deal in deals:
        await activities.invoice_metered(MeteredInput(
            contract_id=deal.deal_id, deal=deal, rules=rules, through_period="2026-11",
            issued_on=date(2026, 12, 1), idempotency_key=f"bench:{deal.deal_id}:2026-11"))  # fmt: skip
    elapsed = time.perf_counter() - started
    rated: int = await pool.fetchval(
        "SELECT count(*) FROM usage_record WHERE invoice_number IS NOT NULL"
    )
    return elapsed, rated


def batches(seq: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [seq[i : i + size] for i in range(0, len(seq), size)]


async def baseline_copy(pool: asyncpg.Pool, records: Sequence[UsageRecord], batch: int) -> float:
    async with pool.acquire() as conn, as_owner(conn):  # the application role creates nothing
        await conn.execute("DROP TABLE IF EXISTS bench_usage_copy")
        await conn.execute(
            """CREATE TABLE bench_usage_copy (contract_id text, record_id text, metric text,
                       quantity numeric(26, 6), occurred_at timestamptz, period text,
                       PRIMARY KEY (contract_id, record_id))"""
        )
        started = time.perf_counter()
        for chunk in batches(records, batch):
            await conn.copy_records_to_table(
                "bench_usage_copy", records=[usage_row(r) for r in chunk],
                columns=("contract_id", "record_id", "metric", "quantity", "occurred_at", "period"),
            )  # fmt: skip
        elapsed = time.perf_counter() - started
        await conn.execute("DROP TABLE bench_usage_copy")
    return elapsed


async def store_all(
    pool: asyncpg.Pool, records: Sequence[UsageRecord], batch: int
) -> tuple[float, int]:
    started = time.perf_counter()
    stored = 0
    for chunk in batches(records, batch):
        stored += (await store_usage(pool, chunk, source="bench")).stored
    return time.perf_counter() - started, stored


async def end_to_end(
    pool: asyncpg.Pool, raw: list[dict[str, Any]], batch: int
) -> tuple[float, int]:
    started = time.perf_counter()
    stored = 0
    for chunk in batches(raw, batch):
        records, problems = parse_usage_records(list(chunk))
        assert not problems, problems[:1]
        stored += (await store_usage(pool, records, source="bench")).stored
    return time.perf_counter() - started, stored


async def bench(count: int, batch: int) -> int:
    with tempfile.TemporaryDirectory(prefix="revops-bench-usage-") as state:
        postgres = None
        url = os.environ.get("DATABASE_URL")
        if not url:
            postgres = EmbeddedPostgres(Path(state), free_ports(1)[0])
            url = postgres.start().url
        try:
            await migrate_async(url)
            pool = await create_pool(url, max_size=2)
            try:
                run = uuid.uuid4().hex[:8]
                raw = items(count, run)
                records, _ = parse_usage_records(raw)  # validated up front for phases 1 and 2
                copy_s = await baseline_copy(pool, records, batch)
                store_s, stored = await store_all(pool, records, batch)
                raw2 = items(count, run + "b")
                e2e_s, stored2 = await end_to_end(pool, raw2, batch)
                again_s, stored3 = await end_to_end(pool, raw2, batch)
                rate_s, rated = await rate_all(pool, 1000)
            finally:
                await pool.close()
        finally:
            if postgres is not None:
                postgres.stop()
    assert stored == count and stored2 == count and stored3 == 0
    assert rated == 2 * count, f"rated {rated} of {2 * count}"
    rate = count / e2e_s
    # Ingest and rate, per record: end to end (validate + store) plus its share of rating
    # (rate_s covers the records of both runs, 2 × count).
    rate_both = count / (e2e_s + rate_s / 2)
    print(f"records: {count:,} in batches of {batch:,}; Python {platform.python_version()}, "
          f"{os.cpu_count()} cores ({platform.processor() or platform.machine()})")  # fmt: skip
    print(f"{'phase':34} {'seconds':>8} {'records/s':>11}")
    for name, seconds in [("baseline: bare COPY", copy_s), ("store (validated records)", store_s),
                          ("end to end (validate + store)", e2e_s),
                          ("end to end, all duplicates", again_s)]:  # fmt: skip
        print(f"{name:34} {seconds:8.2f} {count / seconds:11,.0f}")
    print(f"{'rate (both runs, 1,000 contracts)':34} {rate_s:8.2f} {2 * count / rate_s:11,.0f}")
    ratio = store_s / copy_s
    print(
        f"store ÷ COPY = {ratio:.2f} (target ≤ 3: {'MET' if ratio <= 3 else 'NOT MET'}); "
        f"end to end {rate:,.0f}/s; ingest and rate {rate_both:,.0f}/s "
        f"(target ≥ 20,000: {'MET' if rate_both >= 20_000 else 'NOT MET'})"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    args = parser.parse_args(argv)
    return event_loop.run(bench(args.records, args.batch))


if __name__ == "__main__":
    sys.exit(main())
