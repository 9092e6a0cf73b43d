"""`revops audit verify` and `revops audit show` (starter/audit_trail.py, audit_commands.py).

On the session database, a real deal leaves its trail: the clean book deal hs-deal-90401 sent
without its PO, so `structural.po_present` opens a case that billing resolves by amending the
PO; the deal then books, invoices, recognises October and completes. The shared chain must
verify intact and `show` must list the deal's events in order.

Tampering happens only in a scratch database created on the same server (and dropped at the
end), so the other tests of the session keep an intact chain. Each tampering runs in a
transaction as the tables' owner with the user triggers disabled, and is rolled back.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from activities.db import DbConnection, create_pool, insert_audit_event, insert_audit_events
from models.audit import AuditEvent
from models.case import Resolution, ResolutionAction
from models.deal_flow import DealStage
from models.rules import Role
from starter.api_keys import create_api_key
from starter.audit_trail import (
    ALTERED,
    AUDIT_ROW_COLUMNS,
    FIRST_HAS_PREDECESSOR,
    HASH_MISSING,
    AuditRow,
    BrokenLink,
    ChainReport,
    audit_event_digest,
    audit_row,
    digest_text,
    jsonb_text,
    prev_hash_mismatch,
    seq_never_issued,
    subject_history,
    verify_chain,
)
from starter.database import migrate_async
from starter.ports import free_ports
from starter.services import Services
from starter.settings import PROJECT_ROOT, Settings
from tests.integration.helpers import (
    book_deal,
    scratch_database,
    unique_deal_id,
    wait_for_case,
    wait_for_outcome,
    wait_for_state,
)
from workflows.exception_case import ExceptionCaseWorkflow

pytestmark = pytest.mark.integration

CLEAN = "hs-deal-90401"
CHECK = "structural.po_present"
NOTE = "PO 4500187236 confirmed"
RESOLVER = "maria.santos"  # billing, in rules/directory.yaml
# In this order (other events, such as notifications, may come between them).
DEAL_ACTIONS = [
    "deal.received",
    "gates.run",
    "case.opened",
    "case.resolved",
    "gates.run",
    "contract.booked",
    "invoice.issued",
    "revenue.recognised",
    "deal.completed",
]


# --- the CLI, as an operator runs it -----------------------------------------------------------


async def audit_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`revops audit ...` in a child process against `database_url` (in a thread, so this
    process's worker keeps running)."""
    env = {**os.environ, "DATABASE_URL": database_url, "COLUMNS": "200"}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "starter.audit_commands", *args],
        env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def subsequence(wanted: list[str], actual: list[str]) -> bool:
    remaining = iter(actual)
    return all(any(item == want for item in remaining) for want in wanted)


def in_order(text: str, parts: list[str]) -> bool:
    """Whether every part occurs in `text`, each after the one before."""
    position = 0
    for part in parts:
        found = text.find(part, position)
        if found < 0:
            return False
        position = found + len(part)
    return True


# --- a real deal's trail on the session database -----------------------------------------------


@dataclass(frozen=True)
class TrailedDeal:
    deal_id: str
    case_id: str
    submitter: str
    resolver: str


async def key_for(services: Services, role: Role) -> tuple[str, dict[str, str]]:
    name = f"it-audit-{role.value}-{uuid.uuid4().hex[:8]}"
    key = await create_api_key(services.pool, name, role)
    return name, {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
async def trailed_deal(services: Services) -> TrailedDeal:
    """A deal sent through the API without its PO; billing amends the case (the workflow
    update the Web UI and `revops case resolve` use), and the deal completes."""
    assert services.api_url is not None, "the API did not start (port taken?)"
    deal_id = unique_deal_id()
    workflow_id, case_id = f"deal-{deal_id}", f"case-deal-{deal_id}-{CHECK}"
    deal = {**book_deal(CLEAN, deal_id), "po_number": None}
    submitter, sales_ops = await key_for(services, Role.SALES_OPS)
    async with httpx.AsyncClient(base_url=services.api_url, timeout=30) as api:
        posted = await api.post(
            "/deals",
            content=json.dumps(deal),
            headers={**sales_ops, "Content-Type": "application/json"},
        )
        assert posted.status_code == 202, posted.text
        await wait_for_state(
            services.client,
            workflow_id,
            lambda s: s.stage is DealStage.AWAITING_RESOLUTION and bool(s.open_cases),
        )
    # The case takes resolutions once it has read its routing and started its SLA clock.
    await wait_for_case(services.client, case_id, lambda c: c.sla_deadline is not None)
    case = services.client.get_workflow_handle_for(ExceptionCaseWorkflow.run, case_id)
    await case.execute_update(
        ExceptionCaseWorkflow.resolve,
        Resolution(action=ResolutionAction.AMEND, actor=RESOLVER, reason_code="DATA_CORRECTED",
                   note=NOTE, amendments={"po_number": "4500187236"}),
    )  # fmt: skip
    outcome = await wait_for_outcome(services.client, workflow_id)
    assert outcome.stage is DealStage.COMPLETED
    # Its contract workflow then e-mails the first invoice; wait for that, so the trail the
    # tests read is not still growing.
    for _ in range(150):
        if await services.pool.fetchval(
            "SELECT 1 FROM audit_event WHERE subject = $1 AND action = 'invoice.dispatched'",
            f"deal:{deal_id}",
        ):
            break
        await asyncio.sleep(0.2)
    return TrailedDeal(deal_id, case_id, submitter, RESOLVER)


async def test_verify_finds_the_shared_chain_intact_and_checks_every_row(
    services: Services, trailed_deal: TrailedDeal
) -> None:
    count = "SELECT count(*) FROM audit_event"
    before: int = await services.pool.fetchval(count)
    # Read before verifying: the deal's contract workflow may still be writing events.
    deal_last = await services.pool.fetchval(
        "SELECT max(seq) FROM audit_event WHERE subject = $1", f"deal:{trailed_deal.deal_id}"
    )
    async with services.pool.acquire() as conn:
        report = await verify_chain(conn)
        in_small_batches = await verify_chain(conn, batch_size=7)
    after: int = await services.pool.fetchval(count)

    assert report.ok, report.first_broken and report.first_broken.describe()
    assert (report.broken_rows, report.first_broken) == (0, None)
    assert before <= report.rows_checked <= after  # other deals may still be writing
    if before == after:
        assert report.rows_checked == before
    assert in_small_batches.ok and in_small_batches.rows_checked >= report.rows_checked
    head = await services.pool.fetchrow(
        "SELECT seq, hash FROM audit_event WHERE seq = $1", report.last_seq
    )
    assert head is not None and head["hash"] == report.last_hash
    assert report.first_seq == await services.pool.fetchval("SELECT min(seq) FROM audit_event")
    assert report.last_seq is not None and report.last_seq >= deal_last
    assert report.sequence_last_value is not None
    assert report.sequence_last_value >= report.last_seq


async def test_events_written_in_one_statement_chain_in_their_order_and_once(
    services: Services,
) -> None:
    subject = f"deal:{unique_deal_id()}"
    first, second, third = (
        AuditEvent(
            key=f"{subject}:{n}",
            actor="system",
            action=f"test.step{n}",
            subject=subject,
            after={"n": n},
            rules_version="test",
        )
        for n in (1, 2, 3)
    )
    async with services.pool.acquire() as conn, conn.transaction():
        assert await insert_audit_events(conn, [first, second]) == 2
    async with services.pool.acquire() as conn, conn.transaction():
        assert await insert_audit_events(conn, [first, second]) == 0  # a retried step
        assert await insert_audit_events(conn, [second, third]) == 1
    rows = await services.pool.fetch(
        "SELECT action, seq, hash, prev_hash FROM audit_event WHERE subject = $1 ORDER BY seq",
        subject,
    )
    assert [r["action"] for r in rows] == ["test.step1", "test.step2", "test.step3"]
    assert rows[1]["seq"] == rows[0]["seq"] + 1  # one statement: nothing in between
    assert rows[1]["prev_hash"] == rows[0]["hash"]  # the second names the first
    async with services.pool.acquire() as conn:
        assert (await verify_chain(conn)).ok


async def test_the_history_of_a_deal_tells_who_did_what_when_and_why(
    services: Services, trailed_deal: TrailedDeal
) -> None:
    deal_id, case_id = trailed_deal.deal_id, trailed_deal.case_id
    async with services.pool.acquire() as conn:
        rows = await subject_history(conn, deal_id)
        by_subject = await subject_history(conn, f"deal:{deal_id}")
        by_workflow_id = await subject_history(conn, f"deal-{deal_id}")
        case_rows = await subject_history(conn, case_id)
        nothing = await subject_history(conn, f"deal:{unique_deal_id()}")

    actions = [row.action for row in rows]
    assert subsequence(DEAL_ACTIONS, actions), actions
    assert rows == by_subject == by_workflow_id
    assert nothing == []
    assert [row.seq for row in rows] == sorted({row.seq for row in rows})
    assert all(row.subject == f"deal:{deal_id}" for row in rows)
    assert all(row.hash_matches for row in rows)
    assert all(row.occurred_at is not None and row.run_id for row in rows)
    first = {action: next(r for r in rows if r.action == action) for action in DEAL_ACTIONS}
    assert all(r.rules_version == services.rules.version for r in first.values())

    received, opened, resolved = (
        first["deal.received"],
        first["case.opened"],
        first["case.resolved"],
    )
    assert (received.actor, received.after) == (trailed_deal.submitter, {"source": "api"})
    assert received.workflow_id == f"deal-{deal_id}"
    assert (opened.actor, opened.workflow_id) == ("system", case_id)
    assert opened.after["check_id"] == CHECK and opened.after["owner_role"] == "billing"
    assert (resolved.actor, resolved.reason_code) == (RESOLVER, "DATA_CORRECTED")
    assert (resolved.workflow_id, resolved.after["case_id"]) == (case_id, case_id)
    booked, invoiced, completed = (
        first["contract.booked"], first["invoice.issued"], first["deal.completed"]
    )  # fmt: skip
    assert booked.after["contract_id"] == deal_id
    assert invoiced.after["number"].startswith("LLEU-")
    assert invoiced.after["po_number"] == "4500187236"
    assert completed.after == {
        "outcome": "booked, invoiced and posted",
        "invoice": invoiced.after["number"],
    }
    deal_steps = [first[a] for a in DEAL_ACTIONS if not a.startswith("case.")]
    assert all(row.workflow_id == f"deal-{deal_id}" for row in deal_steps)

    case_actions = [row.action for row in case_rows]
    assert subsequence(["case.opened", "case.resolved"], case_actions), case_actions
    assert "gates.run" not in case_actions
    assert set(case_rows) <= set(rows)
    assert all(r.workflow_id == case_id or r.after["case_id"] == case_id for r in case_rows)


async def test_revops_audit_show_and_verify_on_the_session_database(
    services: Services, trailed_deal: TrailedDeal
) -> None:
    url = services.settings.effective_database_url

    table = await audit_cli(url, "show", trailed_deal.deal_id)
    as_json = await audit_cli(url, "show", f"deal:{trailed_deal.deal_id}", "--json")
    case = await audit_cli(url, "show", trailed_deal.case_id)
    verified = await audit_cli(url, "verify")
    unknown = await audit_cli(url, "show", "no-such-deal")

    assert table.returncode == 0, table.stdout + table.stderr
    out = table.stdout
    assert re.search(rf"audit trail of {trailed_deal.deal_id}: \d+ events", out), out
    assert in_order(out, DEAL_ACTIONS), out
    assert trailed_deal.submitter in out and trailed_deal.resolver in out
    assert "DATA_CORRECTED" in out and services.rules.version in out
    assert f"deal-{trailed_deal.deal_id}" in out
    assert "hash does not match" not in out

    assert as_json.returncode == 0, as_json.stderr
    events: list[dict[str, Any]] = json.loads(as_json.stdout)
    assert subsequence(DEAL_ACTIONS, [e["action"] for e in events])
    resolved = next(e for e in events if e["action"] == "case.resolved")
    assert (resolved["actor"], resolved["reason_code"]) == (trailed_deal.resolver, "DATA_CORRECTED")
    assert resolved["workflow_id"] == trailed_deal.case_id and resolved["run_id"]
    assert all(e["hash_matches"] and len(e["hash"]) == 64 for e in events)
    assert all(e["occurred_at"].endswith("Z") for e in events)

    assert case.returncode == 0, case.stdout + case.stderr
    assert in_order(case.stdout, ["case.opened", "case.resolved"])
    assert "gates.run" not in case.stdout

    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("audit trail intact")
    checked = re.search(r"^rows checked\s+([\d,]+) \(seq \d[\d,]* to \d[\d,]*\)$",
                        verified.stdout, re.MULTILINE)  # fmt: skip
    assert checked is not None, verified.stdout
    assert int(checked.group(1).replace(",", "")) >= len(events)
    assert re.search(r"^newest row\s+seq [\d,]+, hash [0-9a-f]{64}", verified.stdout, re.M)

    assert unknown.returncode == 1
    assert "no audit events for no-such-deal" in unknown.stdout


async def test_an_unreachable_database_is_named_with_exit_code_2() -> None:
    [port] = free_ports(1)  # nothing listens there
    result = await audit_cli(f"postgresql://revops:hunter2@127.0.0.1:{port}/revops", "verify")

    assert result.returncode == 2
    assert result.stdout.startswith(f"cannot reach PostgreSQL at revops@127.0.0.1:{port}/revops")
    assert "is `revops up` running?" in result.stdout
    assert "hunter2" not in result.stdout + result.stderr


# --- a scratch database for the digest and the tampering ----------------------------------------


@dataclass(frozen=True)
class Scratch:
    url: str
    pool: asyncpg.Pool


# Timestamps the digest must spell as to_char does: an offset, the last microsecond of a
# day, a whole second (.000000), a three-digit year, years Python cannot hold, and infinity.
TIMESTAMPS = [
    "2026-03-29 01:59:59.5+01",
    "1999-12-31 23:59:59.999999-08",
    "2026-11-23 00:00:00+00",
    "0099-06-01 12:00:00.25+03",
    "12345-01-01 00:00:00+00",
    "infinity",
    "-infinity",
]
NESTED: dict[str, Any] = {
    "resolution": {"note": "naïve “quotes” \\ back\\slash\nnew line\ttab \u0001 \u2028 \x7f 🧾"},
    "list": [1, 2.5, 1e-7, 1.0, 10**30, True, False, None, {"z": 1, "aa": [], "b": {}}],
    "é": "ü",
    "": "",
    "a|b": "pipe|in|json",
}


def scratch_events() -> list[AuditEvent]:
    return [
        AuditEvent(key="scratch:01", actor="system", action="deal.received",
                   subject="deal:scratch-1", after={"source": "api"}, rules_version="r-1"),
        AuditEvent(key="scratch:02", actor="system", action="gates.run",  # every NULL
                   subject="deal:scratch-1"),
        AuditEvent(key="scratch:03", actor="Zoë Ångström 🧾", action="case.resolved",
                   subject="deal:ü-42|pipe", before={"note": "before — ok"}, after=NESTED,
                   reason_code="DATA_CORRECTED", rules_version="r-1"),
        AuditEvent(key="scratch:04", actor="", action="x", subject="deal:scratch-1",
                   before={}, after={"a": []}, reason_code="", rules_version=""),
        AuditEvent(key="scratch:05", actor="system", action="contract.booked",
                   subject="deal:scratch-1", after={"tcv": "1,200.00 USD", "n": -0.0}),
        AuditEvent(key="scratch:06", actor="system", action="invoice.issued",
                   subject="deal:scratch-1", after={"number": "LLUS-000001"}),
    ]  # fmt: skip


async def insert_raw(conn: DbConnection, key: str, occurred_at: str) -> None:
    await conn.execute(
        """INSERT INTO audit_event (idempotency_key, occurred_at, actor, action, subject,
               after, workflow_id, run_id)
           VALUES ($1, $2::text::timestamptz, 'it-clock', 'clock.ticked', 'clock:scratch',
                   $3::text::jsonb, 'deal-scratch', '0190f3c2-7d1e-7b8a-9c4d-2e5f6a7b8c9d')""",
        key, occurred_at, json.dumps({"at": occurred_at}),
    )  # fmt: skip


@pytest.fixture(scope="module")
async def scratch(services: Services, stack_settings: Settings) -> AsyncIterator[Scratch]:
    """A fresh, migrated database on the session's server with a short chain of audit events
    (two sequence numbers left unused on purpose), dropped at the end."""
    async with scratch_database(services, stack_settings, "revops_audit") as url:
        await migrate_async(url)
        pool = await create_pool(url, max_size=3)
        try:
            async with pool.acquire() as conn:
                events = scratch_events()
                for event in events[:3]:
                    assert await insert_audit_event(conn, event)
                for n, at in enumerate(TIMESTAMPS):
                    await insert_raw(conn, f"scratch:clock:{n}", at)
                # A repeated write draws a sequence number (the BEFORE trigger runs first) ...
                assert not await insert_audit_event(conn, events[0])
                for event in events[3:5]:
                    assert await insert_audit_event(conn, event)
                # ... and so does a write that rolls back.
                with pytest.raises(RuntimeError):
                    async with conn.transaction():
                        await insert_audit_event(conn, AuditEvent(
                            key="scratch:rolled-back", actor="x", action="y", subject="z"))  # fmt: skip
                        raise RuntimeError("roll back")
                assert await insert_audit_event(conn, events[5])
            yield Scratch(url, pool)
        finally:
            await pool.close()


async def chain_of(conn: DbConnection) -> list[AuditRow]:
    records = await conn.fetch(f"SELECT {AUDIT_ROW_COLUMNS} FROM audit_event ORDER BY seq")
    return [audit_row(r) for r in records]


@asynccontextmanager
async def tampering(scratch: Scratch) -> AsyncIterator[DbConnection]:
    """A transaction on the scratch database as the tables' owner, with the append-only and
    chain triggers disabled; rolled back at the end, so every case starts intact."""
    async with scratch.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute("SET LOCAL ROLE NONE")
            await conn.execute("ALTER TABLE audit_event DISABLE TRIGGER USER")
            yield conn
        finally:
            await transaction.rollback()


def first_break(report: ChainReport) -> BrokenLink:
    assert not report.ok and report.first_broken is not None, report
    return report.first_broken


def the_only_break(report: ChainReport) -> tuple[int, tuple[str, ...]]:
    broken = first_break(report)
    assert report.broken_rows == 1, report
    return broken.seq, broken.problems


# --- the digest, byte for byte ------------------------------------------------------------------


def test_the_digest_text_is_concat_ws_of_the_fields() -> None:
    row = AuditRow(
        seq=7, idempotency_key="k", occurred_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        actor="a", action="b", subject="deal:x", before_json=None, after_json='{"a": 1}',
        reason_code=None, rules_version="r1", workflow_id=None, run_id=None, prev_hash=None,
        hash=None,
    )  # fmt: skip
    infinite = replace(row, occurred_at=None, occurred_text=None)

    assert digest_text(row) == '7|2026-01-02T03:04:05.000000|k|a|b|deal:x||{"a": 1}||r1|||'
    assert digest_text(infinite) == '7|k|a|b|deal:x||{"a": 1}||r1|||'  # NULL drops its "|"
    # Fields are not escaped and NULL counts as '': these pairs hash the same (a weakness of
    # the format in migration 0002, reported rather than fixed here).
    assert audit_event_digest(replace(row, actor="a|b", action="c")) == audit_event_digest(
        replace(row, actor="a", action="b|c")
    )
    assert audit_event_digest(replace(row, reason_code="")) == audit_event_digest(row)


async def test_the_python_digest_equals_the_database_function_on_every_row(
    scratch: Scratch,
) -> None:
    async with scratch.pool.acquire() as conn:
        records = await conn.fetch(
            f"""SELECT {AUDIT_ROW_COLUMNS}, audit_event_digest(a) AS in_database
                FROM audit_event a ORDER BY seq"""
        )
    rows = [(audit_row(r), r["in_database"]) for r in records]

    assert len(rows) == 6 + len(TIMESTAMPS)
    assert [audit_event_digest(row) for row, _ in rows] == [db for _, db in rows]
    assert all(row.hash == db for row, db in rows)
    first = rows[0][0]
    assert first.prev_hash is None and digest_text(first).endswith("|")  # NULL prev_hash is ''
    by_key = {row.idempotency_key: row for row, _ in rows}
    assert by_key["scratch:03"].after == json.loads(json.dumps(NESTED))
    assert by_key["scratch:03"].note == NESTED["resolution"]["note"]
    clock = [by_key[f"scratch:clock:{n}"].when for n in range(len(TIMESTAMPS))]
    assert clock == [
        "2026-03-29T00:59:59.500000",
        "2000-01-01T07:59:59.999999",
        "2026-11-23T00:00:00.000000",
        "0099-06-01T09:00:00.250000",
        "12345-01-01T00:00:00.000000",  # beyond datetime: rendered by PostgreSQL
        "(not a finite time)",  # to_char gives NULL, which concat_ws leaves out
        "(not a finite time)",
    ]


@pytest.mark.parametrize(
    "value",
    [
        NESTED,
        {"b": 1, "aa": 2, "a": 3, "é": 4, "z": 5, "ab": 6},  # by byte length, then bytes
        [1.0, 1e2, 1.5e3, 1e-7, 1e16, -0.0, 0.1 + 0.2, 10**40, Decimal("1.50"), Decimal("1E+2")],
        'control \b\f\n\r\t \u001f \u007f / \\ " é 🧾 \u2028',
        {"nested": {"deeper": [{"deepest": [None, True, False, ""]}]}},
        None,
        [],
        {},
    ],
    ids=["nested", "key order", "numbers", "escapes", "deep", "null", "empty list", "empty"],
)
async def test_jsonb_text_prints_values_as_postgresql_does(scratch: Scratch, value: Any) -> None:
    as_json = json.dumps(value, default=str)
    if isinstance(value, list) and any(isinstance(v, Decimal) for v in value):
        as_json = "[" + ", ".join(str(v) for v in value) + "]"
    printed = await scratch.pool.fetchval("SELECT $1::text::jsonb::text", as_json)

    assert jsonb_text(value) == printed
    assert jsonb_text(json.loads(printed, parse_float=Decimal)) == printed  # and back


# --- verifying: intact, then tampered -----------------------------------------------------------


async def test_the_intact_scratch_chain_verifies_and_its_gaps_are_counted(scratch: Scratch) -> None:
    async with scratch.pool.acquire() as conn:
        report = await verify_chain(conn)
        count = await conn.fetchval("SELECT count(*) FROM audit_event")
        last_value = await conn.fetchval("SELECT last_value FROM audit_event_seq")

    assert report.ok and report.first_broken is None
    assert report.rows_checked == count == 6 + len(TIMESTAMPS)
    assert report.unused_seq_numbers == 2  # the repeated write and the rolled-back one
    assert (report.first_seq, report.last_seq, report.sequence_last_value) == (
        1,
        last_value,
        last_value,
    )


async def test_an_altered_row_is_reported_as_altered(scratch: Scratch) -> None:
    async with tampering(scratch) as conn:
        target = (await chain_of(conn))[4]
        await conn.execute("UPDATE audit_event SET actor = 'it-mallory' WHERE seq = $1", target.seq)
        report = await verify_chain(conn)

    assert the_only_break(report) == (target.seq, (ALTERED,))
    assert first_break(report).idempotency_key == target.idempotency_key
    assert first_break(report).describe() == (
        f"seq {target.seq} (key {target.idempotency_key}, {target.action} on {target.subject}): "
        "hash does not match contents (row altered)"
    )


async def test_a_deleted_row_is_reported_at_the_row_after_it(scratch: Scratch) -> None:
    async with tampering(scratch) as conn:
        chain = await chain_of(conn)
        before, deleted, after = chain[4], chain[5], chain[6]
        await conn.execute("DELETE FROM audit_event WHERE seq = $1", deleted.seq)
        report = await verify_chain(conn)

    assert the_only_break(report) == (after.seq, (prev_hash_mismatch(before.seq, after.seq),))
    assert report.rows_checked == len(chain) - 1
    described = first_break(report).describe()
    assert f"seq {deleted.seq} not present" in described
    assert "a row was deleted or reordered before this one" in described


async def test_two_rows_with_swapped_seq_are_reported(scratch: Scratch) -> None:
    async with tampering(scratch) as conn:
        chain = await chain_of(conn)
        first, second = chain[3], chain[4]
        await conn.execute("UPDATE audit_event SET seq = -1 WHERE seq = $1", first.seq)
        await conn.execute("UPDATE audit_event SET seq = $1 WHERE seq = $2", first.seq, second.seq)
        await conn.execute("UPDATE audit_event SET seq = $1 WHERE seq = -1", second.seq)
        report = await verify_chain(conn)

    broken = first_break(report)
    assert broken.seq == first.seq
    assert broken.idempotency_key == second.idempotency_key  # now in first place
    assert broken.problems == (ALTERED, prev_hash_mismatch(chain[2].seq, first.seq))
    assert report.broken_rows == 3  # both rows, and the link from the row after them


async def test_a_rehashed_altered_row_breaks_the_link_of_the_next_row(scratch: Scratch) -> None:
    async with tampering(scratch) as conn:
        chain = await chain_of(conn)
        target, after = chain[4], chain[5]
        await conn.execute("UPDATE audit_event SET actor = 'it-mallory' WHERE seq = $1", target.seq)
        await conn.execute(  # what an attacker would do: make the row consistent again
            "UPDATE audit_event a SET hash = audit_event_digest(a) WHERE seq = $1", target.seq
        )
        report = await verify_chain(conn)

    assert the_only_break(report) == (after.seq, (prev_hash_mismatch(target.seq, after.seq),))
    described = first_break(report).describe()
    assert "or the previous row was altered and its hash recomputed" in described


async def test_a_replaced_digest_function_does_not_hide_an_altered_row(scratch: Scratch) -> None:
    operators_query = """SELECT count(*) FROM (
        SELECT hash, prev_hash, audit_event_digest(a) AS digest,
               lag(hash) OVER (ORDER BY seq) AS previous FROM audit_event a) c
        WHERE hash IS DISTINCT FROM digest OR prev_hash IS DISTINCT FROM previous"""
    async with tampering(scratch) as conn:
        target = (await chain_of(conn))[2]
        await conn.execute("UPDATE audit_event SET actor = 'it-mallory' WHERE seq = $1", target.seq)
        await conn.execute(
            """CREATE OR REPLACE FUNCTION audit_event_digest(e audit_event) RETURNS text
               LANGUAGE sql IMMUTABLE AS $$ SELECT e.hash $$"""
        )
        fooled = await conn.fetchval(operators_query)
        report = await verify_chain(conn)

    assert fooled == 0  # the SQL check trusts the function
    assert the_only_break(report) == (target.seq, (ALTERED,))


async def test_a_forged_row_past_the_sequence_is_reported(scratch: Scratch) -> None:
    async with tampering(scratch) as conn:
        last = (await chain_of(conn))[-1]
        last_value = await conn.fetchval("SELECT last_value FROM audit_event_seq")
        forged = last_value + 1000
        await conn.execute(
            """INSERT INTO audit_event (seq, idempotency_key, actor, action, subject, prev_hash)
               VALUES ($1, 'scratch:forged', 'it-mallory', 'invoice.voided', 'deal:scratch-1', $2)""",
            forged, last.hash,
        )  # fmt: skip
        await conn.execute(
            "UPDATE audit_event a SET hash = audit_event_digest(a) WHERE seq = $1", forged
        )
        report = await verify_chain(conn)

    assert the_only_break(report) == (forged, (seq_never_issued(forged, last_value),))


async def test_deleting_the_first_row_or_clearing_a_hash_is_reported(scratch: Scratch) -> None:
    async with tampering(scratch) as conn:
        chain = await chain_of(conn)
        await conn.execute("DELETE FROM audit_event WHERE seq = $1", chain[0].seq)
        first_deleted = await verify_chain(conn)
    async with tampering(scratch) as conn:
        await conn.execute("UPDATE audit_event SET hash = NULL WHERE seq = $1", chain[3].seq)
        cleared = await verify_chain(conn)

    assert the_only_break(first_deleted) == (chain[1].seq, (FIRST_HAS_PREDECESSOR,))
    broken = first_break(cleared)
    assert (broken.seq, broken.problems) == (chain[3].seq, (HASH_MISSING,))
    assert cleared.broken_rows == 2  # and the next row's link no longer matches


async def test_removing_the_newest_rows_shows_only_against_a_recorded_head(
    scratch: Scratch,
) -> None:
    async with scratch.pool.acquire() as conn:
        recorded = await verify_chain(conn)
    async with tampering(scratch) as conn:
        await conn.execute("DELETE FROM audit_event WHERE seq = $1", recorded.last_seq)
        truncated = await verify_chain(conn)
        still_there = await conn.fetchval(
            "SELECT count(*) FROM audit_event WHERE seq = $1 AND hash = $2",
            recorded.last_seq, recorded.last_hash,
        )  # fmt: skip

    assert truncated.ok  # every remaining link holds: the chain cannot see its own end cut
    assert truncated.last_seq != recorded.last_seq and still_there == 0


async def test_revops_audit_verify_and_show_on_a_tampered_database(scratch: Scratch) -> None:
    async with scratch.pool.acquire() as conn:
        target = (await chain_of(conn))[2]
    altered_actor = "it-mallory"

    async def set_actor(actor: str) -> None:
        async with scratch.pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL ROLE NONE")
            await conn.execute("ALTER TABLE audit_event DISABLE TRIGGER USER")
            await conn.execute(
                "UPDATE audit_event SET actor = $1 WHERE seq = $2", actor, target.seq
            )
            await conn.execute("ALTER TABLE audit_event ENABLE TRIGGER USER")

    await set_actor(altered_actor)  # committed: the CLI runs in another process
    try:
        verified = await audit_cli(scratch.url, "verify")
        as_json = await audit_cli(scratch.url, "verify", "--json")
        shown = await audit_cli(scratch.url, "show", target.subject)
    finally:
        await set_actor(target.actor)
    restored = await audit_cli(scratch.url, "verify")

    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert verified.stdout.startswith("audit trail BROKEN: 1 of 13 rows fail the check")
    assert re.search(r"^rows checked\s+13 \(seq 1 to 15\)$", verified.stdout, re.M), verified.stdout
    assert (
        f"first broken   seq {target.seq} (key {target.idempotency_key}, "
        f"{target.action} on {target.subject}): hash does not match contents (row altered)"
    ) in verified.stdout
    assert "unused seq     2 between rows" in verified.stdout
    report = json.loads(as_json.stdout)
    assert as_json.returncode == 1
    assert (report["ok"], report["rows_checked"], report["broken_rows"]) == (False, 13, 1)
    assert report["first_broken"]["seq"] == target.seq
    assert report["first_broken"]["problems"] == [ALTERED]
    assert shown.returncode == 0 and altered_actor in shown.stdout
    assert f"seq {target.seq}: hash does not match contents" in shown.stdout
    assert restored.returncode == 0 and restored.stdout.startswith("audit trail intact")
