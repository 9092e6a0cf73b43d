"""The system of record: customers, contracts, gate results and exception cases."""

from __future__ import annotations

import json
from decimal import Decimal

import asyncpg
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.db import DbConnection, insert_audit_event, insert_audit_events, jsonable
from activities.ledger import store_schedule
from models.audit import SYSTEM_ACTOR, AuditEvent
from models.contract_flow import discount_exceptions
from models.customer import CustomerStanding
from models.deal import DealSubmission
from models.qa import GateResult
from models.recognition import build_schedule

DATA_MISMATCH = "DataMismatch"


class LoadStandingInput(BaseModel):
    customer_id: str
    exclude_deal_id: str = ""
    usd_rates: dict[str, Decimal]


class RecordGatesInput(BaseModel):
    deal_id: str
    run_no: int
    results: list[GateResult]
    deal: DealSubmission = Field(description="What the gates saw, kept for `rules replay`")
    standing: CustomerStanding
    rules_version: str
    submitted_by: str = Field(description="Who submitted the deal (recorded on the first run)")
    source: str = ""


class RecordOutcomeInput(BaseModel):
    deal_id: str
    stage: str
    outcome: str
    invoice_number: str | None
    rules_version: str


class BookContractInput(BaseModel):
    deal: DealSubmission
    usd_rate: Decimal
    rules_version: str


class BookContractResult(BaseModel):
    contract_id: str
    customer_created: bool
    exceptions_booked: bool = False  # False in results recorded before book_contract wrote them


async def insert_discount_exceptions(conn: DbConnection, deal: DealSubmission) -> list[str]:
    """Each discounted line as an active pricing exception (once); their ids."""
    found = discount_exceptions(deal)
    if not found:
        return []  # asyncpg would still make a round trip for no rows
    await conn.executemany(
        """INSERT INTO pricing_exception (deal_id, exception_id, kind, line_id, detail,
               starts_on, expires_on, status)
           VALUES ($1, $2, 'discount', $3, $4, $5, $6, 'active') ON CONFLICT DO NOTHING""",
        [(deal.deal_id, d.exception_id, d.line_id, {"percent": str(d.percent)},
          deal.start_date, d.expires_on) for d in found],
    )  # fmt: skip
    return [d.exception_id for d in found]


class RecordsActivities:
    """Reads and writes of the system of record; each write happens once per key."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def load_customer_standing(self, data: LoadStandingInput) -> CustomerStanding:
        """The customer's credit standing from its booked contracts and invoices (in USD)."""
        row = await self._pool.fetchrow(
            """SELECT c.on_credit_hold, c.late_payments,
                      (SELECT count(*) FROM contract k WHERE k.customer_id = c.customer_id
                         AND k.deal_id <> $2) AS prior_orders,
                      (SELECT coalesce(sum(k.arr_usd), 0) FROM contract k
                         WHERE k.customer_id = c.customer_id AND k.deal_id <> $2
                           AND k.end_date >= current_date) AS existing_arr_usd,
                      (SELECT coalesce(max(k.tcv_usd), 0) FROM contract k
                         WHERE k.customer_id = c.customer_id AND k.deal_id <> $2) AS largest
               FROM customer c WHERE c.customer_id = $1""",
            data.customer_id, data.exclude_deal_id,
        )  # fmt: skip
        if row is None:
            return CustomerStanding.new(data.customer_id)
        return CustomerStanding(
            customer_id=data.customer_id,
            prior_orders=row["prior_orders"],
            existing_arr_usd=row["existing_arr_usd"],
            largest_prior_tcv_usd=row["largest"],
            late_payments=row["late_payments"],
            on_credit_hold=row["on_credit_hold"],
            open_receivables_usd=await self._open_receivables_usd(data),
        )

    async def _open_receivables_usd(self, data: LoadStandingInput) -> Decimal:
        rows = await self._pool.fetch(
            """SELECT l.currency, sum(l.debit - l.credit) AS balance
               FROM journal_line l JOIN journal_entry e ON e.id = l.entry_id
               JOIN contract k ON k.deal_id = e.deal_id
               WHERE k.customer_id = $1 AND l.account = '1100 Accounts receivable'
               GROUP BY l.currency""",
            data.customer_id,
        )
        return sum(
            (r["balance"] * data.usd_rates.get(r["currency"], Decimal(0)) for r in rows),
            Decimal(0),
        )

    @activity.defn
    async def record_gate_results(self, data: RecordGatesInput) -> None:
        failed = [r.check_id for r in data.results if not r.passed]
        async with self._pool.acquire() as conn, conn.transaction():
            rs = data.results
            # Every result and what the gates saw, in one statement.
            await conn.execute(
                """WITH gates AS (
                       INSERT INTO gate_result (deal_id, run_no, check_id, layer, passed,
                           severity, owner_role, messages, evidence, rules_version)
                       SELECT $1, $2, c, l, p, s, o, m::jsonb, e::jsonb, v
                       FROM unnest($3::text[], $4::text[], $5::bool[], $6::text[], $7::text[],
                                   $8::text[], $9::text[], $10::text[]) AS g(c, l, p, s, o, m, e, v)
                       ON CONFLICT DO NOTHING)
                   INSERT INTO gate_input (deal_id, run_no, deal, standing, rules_version)
                   VALUES ($1, $2, $11, $12, $13) ON CONFLICT DO NOTHING""",
                data.deal_id, data.run_no, [r.check_id for r in rs], [r.layer.value for r in rs],
                [r.passed for r in rs], [r.severity for r in rs],
                [r.owner_role.value for r in rs], [json.dumps(r.messages) for r in rs],
                [json.dumps(r.evidence) for r in rs], [r.rules_version for r in rs],
                jsonable(data.deal), jsonable(data.standing), data.rules_version,
            )  # fmt: skip
            received = AuditEvent(
                key=f"deal:{data.deal_id}:received", actor=data.submitted_by,
                action="deal.received", subject=f"deal:{data.deal_id}",
                after={"source": data.source}, rules_version=data.rules_version)  # fmt: skip
            gates = AuditEvent(
                key=f"deal:{data.deal_id}:gates:{data.run_no}",
                actor=SYSTEM_ACTOR,
                action="gates.run",
                subject=f"deal:{data.deal_id}",
                after={"run": data.run_no, "checks": len(data.results), "failed": failed},
                rules_version=data.rules_version,
            )
            await insert_audit_events(conn, [received, gates] if data.run_no == 1 else [gates])

    @activity.defn
    async def record_outcome(self, data: RecordOutcomeInput) -> None:
        """The deal's last audit event: completed (booked, invoiced, posted) or rejected."""
        async with self._pool.acquire() as conn:
            await insert_audit_event(conn, AuditEvent(
                key=f"deal:{data.deal_id}:outcome", actor=SYSTEM_ACTOR,
                action=f"deal.{data.stage}", subject=f"deal:{data.deal_id}",
                after={"outcome": data.outcome, "invoice": data.invoice_number},
                rules_version=data.rules_version))  # fmt: skip

    async def _refuse_a_different_contract(self, conn: DbConnection, deal: DealSubmission) -> None:
        """Seed 001's data mismatch: a contract already booked for this deal with other terms
        suspends the write (nothing here is committed) and the workflow opens a case. Asked
        only when the contract's insert found one already there (a retry, or that case)."""
        stored = await conn.fetchrow(
            "SELECT customer_id, currency, tcv, start_date, end_date FROM contract WHERE deal_id = $1",
            deal.deal_id,
        )
        if stored is None:
            return
        incoming = {"customer_id": deal.customer.customer_id, "currency": deal.currency,
                    "tcv": deal.tcv().amount, "start_date": deal.start_date,
                    "end_date": deal.end_date}  # fmt: skip
        differs = {k: (stored[k], v) for k, v in incoming.items() if stored[k] != v}
        if differs:
            raise ApplicationError(
                f"contract {deal.deal_id} is already booked with other terms: "
                + "; ".join(f"{k} booked {a}, now {b}" for k, (a, b) in differs.items()),
                {k: {"booked": str(a), "incoming": str(b)} for k, (a, b) in differs.items()},
                type=DATA_MISMATCH, non_retryable=True,
            )  # fmt: skip

    @activity.defn
    async def book_contract(self, data: BookContractInput) -> BookContractResult:
        """Write the customer (first time only), the contract and its recognition schedule;
        once per deal."""
        deal, c = data.deal, data.deal.customer
        async with self._pool.acquire() as conn, conn.transaction():
            created = await conn.execute(
                """INSERT INTO customer (customer_id, name, legal_entity, billing_contact,
                       billing_address, tax_registration_number, payment_method,
                       on_credit_hold, late_payments)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, false, 0) ON CONFLICT DO NOTHING""",
                c.customer_id, c.name, c.legal_entity, jsonable(c.billing_contact),
                jsonable(c.billing_address), c.tax_registration_number, c.payment_method.value,
            )  # fmt: skip
            inserted = await conn.execute(
                """INSERT INTO contract (contract_id, deal_id, customer_id, currency, tcv, arr,
                       tcv_usd, arr_usd, start_date, end_date, billing_frequency,
                       recognition_type, deal, rules_version)
                   VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                   ON CONFLICT DO NOTHING""",
                deal.deal_id, c.customer_id, deal.currency, deal.tcv().amount, deal.arr().amount,
                deal.tcv().amount * data.usd_rate, deal.arr().amount * data.usd_rate,
                deal.start_date, deal.end_date, deal.billing_frequency.value,
                deal.recognition_type.value, jsonable(deal), data.rules_version,
            )  # fmt: skip
            if inserted.endswith(" 0"):
                await self._refuse_a_different_contract(conn, deal)
            await store_schedule(conn, build_schedule(deal))
            exceptions = await insert_discount_exceptions(conn, deal)
            await insert_audit_event(
                conn,
                AuditEvent(
                    key=f"deal:{deal.deal_id}:contract.booked",
                    actor=SYSTEM_ACTOR,
                    action="contract.booked",
                    subject=f"deal:{deal.deal_id}",
                    after={"contract_id": deal.deal_id, "customer_id": c.customer_id,
                           "tcv": str(deal.tcv()), "arr": str(deal.arr()),
                           "pricing_exceptions": exceptions},
                    rules_version=data.rules_version,
                ),
            )  # fmt: skip
        return BookContractResult(contract_id=deal.deal_id, customer_created=created.endswith("1"),
                                  exceptions_booked=True)  # fmt: skip
