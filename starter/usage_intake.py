"""Usage ingestion: batches of records stored set-based, once per (contract, record id).

Each batch is copied into a session-local staging table with PostgreSQL's COPY, then moved
into `usage_record` by one INSERT ... SELECT ... ON CONFLICT DO NOTHING: never one statement,
workflow message or activity per record. A record id sent again with the same content is a
duplicate (stored once); sent again with different content it is a conflict, reported and not
stored (the first one stands: usage is evidence, it is corrected by a new record, not edited).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from models.usage import UsageRecord, usage_row

COLUMNS = ("n", "contract_id", "record_id", "metric", "quantity", "occurred_at", "period")


@dataclass(frozen=True)
class UsageIngestResult:
    received: int
    stored: int
    duplicates: int
    conflicts: list[str]  # "contract/record" ids whose stored content differs

    def as_json(self) -> dict[str, object]:
        return {"received": self.received, "stored": self.stored,
                "duplicates": self.duplicates, "conflicts": self.conflicts}  # fmt: skip


async def store_usage(
    pool: asyncpg.Pool, records: Sequence[UsageRecord], source: str
) -> UsageIngestResult:
    """Store one batch in one transaction (all of it or, on an error, none)."""
    if not records:
        return UsageIngestResult(0, 0, 0, [])
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """CREATE TEMP TABLE IF NOT EXISTS usage_incoming (
                   n bigint, contract_id text, record_id text, metric text, quantity numeric(26, 6),
                   occurred_at timestamptz, period text) ON COMMIT DELETE ROWS"""
        )
        await conn.copy_records_to_table(
            "usage_incoming",
            records=[(n, *usage_row(r)) for n, r in enumerate(records)],
            columns=COLUMNS,
        )
        # Inside one batch, the first occurrence of a record id counts.
        stored = await conn.fetchval(
            """WITH first AS (
                   SELECT DISTINCT ON (contract_id, record_id) * FROM usage_incoming
                   ORDER BY contract_id, record_id, n),
               inserted AS (
                   INSERT INTO usage_record (contract_id, record_id, metric, quantity,
                                             occurred_at, period, source)
                   SELECT contract_id, record_id, metric, quantity, occurred_at, period, $1
                   FROM first ON CONFLICT DO NOTHING RETURNING 1)
               SELECT count(*) FROM inserted""",
            source,
        )
        # Every row new: no record id can clash with a stored one (skip the lookup).
        conflicts = (
            []
            if stored == len(records)
            else await conn.fetch(
                """SELECT DISTINCT i.contract_id || '/' || i.record_id AS id
               FROM usage_incoming i JOIN usage_record u USING (contract_id, record_id)
               WHERE (u.metric, u.quantity, u.occurred_at)
                     IS DISTINCT FROM (i.metric, i.quantity, i.occurred_at)
               ORDER BY 1"""
            )
        )
    conflict_ids = [r["id"] for r in conflicts]
    return UsageIngestResult(
        received=len(records), stored=stored,
        duplicates=len(records) - stored - len(conflict_ids), conflicts=conflict_ids,
    )  # fmt: skip
