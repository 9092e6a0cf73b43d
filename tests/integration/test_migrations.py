"""Every migration can be undone and redone: on a scratch database of the session's server,
the schema goes to the newest revision, all the way back, and forward again, ending as it
was (tables, columns, constraints, indexes, triggers, functions and the application role's
privileges)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from starter.database import downgrade, migrate_async
from starter.services import Services
from starter.settings import Settings
from tests.integration.helpers import scratch_database

SCHEMA = """
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' '
       || is_nullable || ' ' || coalesce(column_default, '')
FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' '
       || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'trigger ' || tgrelid::regclass || ' ' || tgname FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'function ' || proname || ' ' || md5(prosrc)
FROM pg_proc WHERE pronamespace = 'public'::regnamespace
UNION ALL
SELECT 'grant ' || table_name || ' ' || grantee || ' ' || privilege_type
FROM information_schema.role_table_grants WHERE table_schema = 'public'
ORDER BY 1
"""


CREDIT_NOTE = """
SET ROLE NONE;
INSERT INTO invoice (number, entity_code, series, sequence, idempotency_key, deal_id,
    customer_id, currency, invoice_date, due_date, subtotal, tax, total, document)
VALUES ('LLUS-CN-000001', 'LL-US', 'credit_note', 1, 'it:credit-note', 'it-deal', 'it-co',
    'USD', '2026-11-23', '2026-11-23', -100, 0, -100, '{}')
"""


async def schema(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [row[0] for row in await conn.fetch(SCHEMA)]
    finally:
        await conn.close()


async def test_every_migration_downgrades_and_upgrades_again(
    services: Services, stack_settings: Settings
) -> None:
    async with scratch_database(services, stack_settings, "revops_migrations") as url:
        await migrate_async(url)
        newest = await schema(url)
        assert any(line.startswith("column invoice.series ") for line in newest)

        conn = await asyncpg.connect(url)
        try:
            await conn.execute(CREDIT_NOTE)
            with pytest.raises(
                RuntimeError, match="1 credit notes are numbered in their own series"
            ):
                await asyncio.to_thread(downgrade, url, "0008")
            await conn.execute("DELETE FROM invoice")  # as the owner: the role may not
        finally:
            await conn.close()
        assert await schema(url) == newest

        await asyncio.to_thread(downgrade, url, "0008")
        before_credit_notes = await schema(url)
        assert not any(line.startswith("column invoice.series ") for line in before_credit_notes)
        assert any("invoice_entity_code_sequence_key UNIQUE (entity_code, sequence)" in line
                   for line in before_credit_notes)  # fmt: skip

        await asyncio.to_thread(downgrade, url, "base")
        assert [ln for ln in await schema(url) if "alembic_version" not in ln] == []

        await migrate_async(url)
        assert await schema(url) == newest
