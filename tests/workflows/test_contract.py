"""The contract workflow on the time-skipping server, outside systems faked in memory.

Each test books a contract starting in 2027 (the server's clock starts today), lets time run
to the dates that matter, and checks the invoices, entries and state a finance user reads.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.records import BookContractInput
from models.amendment import Amendment, AmendmentKind, Treatment
from models.case import CaseStatus
from models.contract_flow import (
    ContractInput,
    ContractOutcome,
    ContractStatus,
    Credit,
    InvoiceResend,
    MilestoneDelivered,
    TimeApproval,
    TimeEntry,
)
from models.contract_invoicing import first_period_billed
from models.contract_terms import ContractTerms
from models.deal import BillingFrequency, DealLine, DealSubmission, ProductType, RecognitionType
from models.money import Money, money_sum
from models.recognition import ScheduleKind
from models.rules import RuleSet
from tests.builders import make_deal, make_line, make_milestone
from tests.workflows.fake_activities import FakeSystems
from tests.workflows.fake_contract_activities import FakeUsage
from workflows.contract import ContractWorkflow
from workflows.exception_case import ExceptionCaseWorkflow


@pytest.fixture
async def env(own_env: WorkflowEnvironment) -> WorkflowEnvironment:
    """A clean clock per test: these tests run a contract's calendar from today into 2027
    and 2028, and the session server's clock would have moved past it."""
    return own_env


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


async def start_contract(
    client: Client, systems: FakeSystems, deal: DealSubmission, rules: RuleSet, task_queue: str,
    *, first_invoice_billed: bool = True,
) -> WorkflowHandle[ContractWorkflow, ContractOutcome]:  # fmt: skip
    """Start `contract-<id>` as the deal workflow does after issuing the first invoice
    (period 1 is recorded as billed, as the deal's first invoice billed it)."""
    from models.billing import first_invoice

    systems.contracts[deal.deal_id] = BookContractInput(deal=deal, usd_rate=1,
                                                        rules_version=rules.version)  # fmt: skip
    terms = ContractTerms.booked(deal)
    billed = first_period_billed(terms, first_invoice(deal)) if first_invoice_billed else {}
    if billed:
        systems.issue(deal, _first(deal), rules, f"deal:{deal.deal_id}:first-invoice",
                      deal.start_date)  # fmt: skip
    return await client.start_workflow(
        ContractWorkflow.run,
        ContractInput(contract_id=deal.deal_id, customer_id=deal.customer.customer_id,
                      terms=terms, rules=rules, started_by="test", billed=billed,
                      next_period=2 if billed else 1),
        id=f"contract-{deal.deal_id}", task_queue=task_queue,
    )  # fmt: skip


def _first(deal: DealSubmission):  # type: ignore[no-untyped-def]
    from models.billing import first_invoice

    event = first_invoice(deal)
    assert event is not None
    return event


async def update(env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any], method: Any,
                 arg: Any) -> Any:  # fmt: skip
    """Run an update with time standing still: the time-skipping server would otherwise jump
    to the contract's next timer while the update's activities run."""
    with env.auto_time_skipping_disabled():
        return await handle.execute_update(method, arg)


async def run_until(env: WorkflowEnvironment, day: date) -> None:
    """Let the server's clock run to 06:00 UTC on `day` (timers on the way fire)."""
    target = datetime(day.year, day.month, day.day, 6, tzinfo=UTC)
    now = await env.get_current_time()
    if target > now:
        await env.sleep(target - now)


def deal_id() -> str:
    return f"C-{uuid.uuid4().hex[:8]}"


def subscription_with_expiring_discount() -> DealSubmission:
    """10 seats of Ledgerline Platform for 2027, billed monthly: list 1,500 per seat for the
    term, 20% off (1,200) through 2027-06-15, list price from 2027-06-16."""
    line = DealLine(
        line_id="L1", product="Ledgerline Platform", product_type=ProductType.SUBSCRIPTION,
        quantity=Decimal(10), list_price=Decimal(1500), net_price=Decimal(1200),
        standalone_selling_price=Decimal(1200), discount_percent=Decimal(20),
        discount_expiry=date(2027, 6, 15),
    )  # fmt: skip
    return make_deal([line], start=date(2027, 1, 1), end=date(2027, 12, 31),
                     frequency=BillingFrequency.MONTHLY, deal_id=deal_id(),
                     total_contract_value=Decimal("13625.00"))  # fmt: skip


async def test_a_year_of_subscription_with_an_upgrade_in_april_and_a_discount_ending_in_june(
    env: WorkflowEnvironment, worker: Worker, rules: RuleSet, systems: FakeSystems
) -> None:
    """Monthly 1,000 (10 seats × 1,200 / 12). On 2027-04-10 the customer adds 5 seats from
    2027-04-16: April was invoiced in advance, so May's invoice carries April's proration
    (15 of 30 days at 1,500 − 1,000 = +250.00) and May bills 1,500. The discount ends after
    2027-06-15: June bills 1,500 + (1,875 − 1,500) × 15/30 = 1,687.50; July on 1,875
    (15 seats × 1,500 / 12)."""
    deal = subscription_with_expiring_discount()
    handle = await start_contract(env.client, systems, deal, rules, worker.task_queue)

    await run_until(env, date(2027, 4, 10))
    result = await update(env, handle, ContractWorkflow.amend, Amendment(
        amendment_id="A-1", kind=AmendmentKind.SEAT_CHANGE, effective_date=date(2027, 4, 16),
        requested_by="priya.raman", reason="5 more seats for the EMEA team",
        line_id="L1", new_quantity=Decimal(15)))  # fmt: skip
    assert result.treatment is Treatment.PROSPECTIVE
    assert result.schedule_version == 2
    assert result.billing_from_period == 5

    await run_until(env, date(2027, 12, 2))
    invoices = systems.contract_invoices(deal.deal_id)
    subtotals = [i.subtotal for i in invoices]
    assert subtotals == [usd("1000"), usd("1000"), usd("1000"), usd("1000"),
                         usd("1750"), usd("1687.50"), *[usd("1875")] * 6]  # fmt: skip
    may = invoices[4]
    assert [ln.amount for ln in may.lines] == [usd("250.00"), usd("1500.00")]
    assert "proration charge, 2027-04-16 to 2027-04-30" in may.lines[0].description
    june = invoices[5]
    assert "from 2027-06-16: discount of 20% expired 2027-06-15" in june.lines[0].description
    assert systems.pricing_exceptions["discount-L1"] == "expired 2027-06-15"
    # Every invoice went to the billing contact.
    assert systems.dispatched == [i.number for i in invoices[1:]]

    # Revenue: prospective, so Jan..Mar keep what they earned at 10 seats; the rest of the
    # year's consideration (everything billed: 18,687.50) is spread from 2027-04-16 on.
    schedule = systems.schedules[deal.deal_id][-1]
    assert money_sum((e.amount for e in schedule), "USD") == money_sum(subtotals, "USD")
    first_three = systems.schedules[deal.deal_id][0][:3]
    assert schedule[:3] == first_three

    state = await handle.query(ContractWorkflow.state)
    assert state.cycle >= 11  # continued as new once per billing period
    assert state.open_discounts == []
    await run_until(env, date(2028, 1, 2))
    outcome = await handle.result()
    assert outcome.status is ContractStatus.ENDED
    assert outcome.periods_billed == 12


def milestone_project() -> DealSubmission:
    """Implementation 90,000 on three milestones: design (2027-02-26, 20,000), build
    (2027-05-28, 50,000), go-live (2027-07-30, 20,000)."""
    line = make_line("L1", ProductType.SERVICES, "90000", product="Implementation services",
                     recognition=RecognitionType.MILESTONE)  # fmt: skip
    return make_deal(
        [line], start=date(2027, 1, 1), end=date(2027, 9, 30), deal_id=deal_id(),
        frequency=BillingFrequency.MILESTONE, recognition=RecognitionType.MILESTONE,
        milestones=[make_milestone("M1", "L1", date(2027, 2, 26), "20000"),
                    make_milestone("M2", "L1", date(2027, 5, 28), "50000"),
                    make_milestone("M3", "L1", date(2027, 7, 30), "20000")],
    )  # fmt: skip


def accepted(milestone_id: str, on: date) -> MilestoneDelivered:
    return MilestoneDelivered(milestone_id=milestone_id, delivered_on=on, accepted_on=on,
                              accepted_by="Dana Whitfield, CFO", recorded_by="jonas.becker",
                              evidence=f"acceptance certificate {milestone_id}")  # fmt: skip


async def test_a_milestone_delivered_late_is_invoiced_and_earned_when_it_is_accepted(
    env: WorkflowEnvironment, worker: Worker, rules: RuleSet, systems: FakeSystems
) -> None:
    deal = milestone_project()
    handle = await start_contract(env.client, systems, deal, rules, worker.task_queue)

    await run_until(env, date(2027, 2, 26))
    m1 = await update(env, handle, ContractWorkflow.deliver_milestone,
                                     accepted("M1", date(2027, 2, 26)))  # fmt: skip
    assert m1.invoice_total is not None and m1.invoice_total.amount > 0
    assert m1.recognised == usd("20000")

    # M2 was due 2027-05-28 and is late: nothing is invoiced or earned for it until accepted.
    await run_until(env, date(2027, 6, 20))
    assert systems.revenue_by_line(deal.deal_id, "USD") == {"L1": usd("20000")}
    assert len(systems.contract_invoices(deal.deal_id)) == 1

    m2 = await update(env, handle, ContractWorkflow.deliver_milestone,
                      accepted("M2", date(2027, 6, 18)))  # fmt: skip
    assert m2.recognised == usd("50000")
    invoices = systems.contract_invoices(deal.deal_id)
    assert [i.subtotal for i in invoices] == [usd("20000"), usd("50000")]
    assert invoices[1].lines[0].description == "Implementation services: Deliverable M2"
    assert invoices[1].invoice_date == date(2027, 6, 20)

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await update(env, handle, ContractWorkflow.deliver_milestone,
                                    accepted("M2", date(2027, 6, 19)))  # fmt: skip
    assert "milestone_id: M2 was already accepted" in str(refused.value.cause)
    state = await handle.query(ContractWorkflow.state)
    assert state.delivered == ["M1", "M2"]


async def test_deliverables_added_at_their_ssp_are_a_separate_contract_billed_on_acceptance(
    env: WorkflowEnvironment, worker: Worker, rules: RuleSet, systems: FakeSystems
) -> None:
    """After M1, the customer adds a data migration (15,000, its SSP) with one deliverable
    due 2027-06-30. Priced at its SSP, it is a separate contract (ASC 606-10-25-12): the
    original milestones keep their 90,000, the new line gets its own 15,000, earned and
    invoiced when M4 is accepted."""
    deal = milestone_project()
    handle = await start_contract(env.client, systems, deal, rules, worker.task_queue)
    await run_until(env, date(2027, 2, 26))
    await update(env, handle, ContractWorkflow.deliver_milestone, accepted("M1", date(2027, 2, 26)))

    await run_until(env, date(2027, 3, 2))
    migration = make_line("L2", ProductType.SERVICES, "15000", product="Data migration",
                          recognition=RecognitionType.MILESTONE)  # fmt: skip
    result = await update(env, handle, ContractWorkflow.amend, Amendment(
        amendment_id="A-3", kind=AmendmentKind.ADD_DELIVERABLES, effective_date=date(2027, 3, 2),
        requested_by="priya.raman", reason="change order CO-7: legacy data migration",
        new_line=migration, milestones=[make_milestone("M4", "L2", date(2027, 6, 30), "15000")]))  # fmt: skip
    assert result.treatment is Treatment.SEPARATE_CONTRACT
    schedule = systems.schedules[deal.deal_id][-1]
    by_line = {ln: money_sum((e.amount for e in schedule if e.line_id == ln), "USD")
               for ln in ("L1", "L2")}  # fmt: skip
    assert by_line == {"L1": usd("90000"), "L2": usd("15000")}

    await run_until(env, date(2027, 7, 1))
    m4 = await update(env, handle, ContractWorkflow.deliver_milestone,
                      accepted("M4", date(2027, 7, 1)))  # fmt: skip
    assert m4.recognised == usd("15000")
    invoice = systems.contract_invoices(deal.deal_id)[-1]
    assert invoice.subtotal == usd("15000")
    assert invoice.lines[0].description == "Data migration: Deliverable M4"
    assert systems.revenue_by_line(deal.deal_id, "USD") == {"L1": usd("20000"), "L2": usd("15000")}


def usage_contract(threshold: str) -> DealSubmission:
    """API calls at 0.50 each for 2027, an early invoice once 5,000 of usage is unbilled."""
    line = make_line("L1", ProductType.USAGE, "0.50", quantity="120000", product="API usage",
                     recognition=RecognitionType.TIME_AND_MATERIALS)  # fmt: skip
    line = line.model_copy(update={"usage_metric": "api_calls"})
    return make_deal([line], start=date(2027, 1, 1), end=date(2027, 12, 31), deal_id=deal_id(),
                     frequency=BillingFrequency.USAGE, recognition=RecognitionType.TIME_AND_MATERIALS,
                     usage_invoice_threshold=Decimal(threshold))  # fmt: skip


async def test_usage_crossing_its_threshold_is_invoiced_early_and_late_usage_is_never_dropped(
    env: WorkflowEnvironment, worker: Worker, rules: RuleSet, systems: FakeSystems
) -> None:
    deal = usage_contract("5000")
    handle = await start_contract(env.client, systems, deal, rules, worker.task_queue,
                                  first_invoice_billed=False)  # fmt: skip
    cid = deal.deal_id

    await run_until(env, date(2027, 3, 10))
    systems.usage.append(FakeUsage(cid, "r1", "api_calls", Decimal(6000), "2027-03"))
    await handle.signal(ContractWorkflow.usage_received)
    await run_until(env, date(2027, 3, 11))
    assert systems.contract_invoices(cid) == []  # 3,000.00: below the threshold

    systems.usage.append(FakeUsage(cid, "r2", "api_calls", Decimal(5000), "2027-03"))
    await handle.signal(ContractWorkflow.usage_received)
    await run_until(env, date(2027, 3, 12))
    early = systems.contract_invoices(cid)
    assert [i.subtotal for i in early] == [usd("5500.00")]  # 11,000 calls × 0.50
    assert "11000 api_calls" in early[0].lines[0].description

    # More March usage, then a record for February that arrives after February was invoiced.
    systems.usage.append(FakeUsage(cid, "r3", "api_calls", Decimal(1000), "2027-03"))
    await run_until(env, date(2027, 4, 2))
    systems.usage.append(FakeUsage(cid, "r4", "api_calls", Decimal(400), "2027-02"))
    await run_until(env, date(2027, 5, 2))
    subtotals = [i.subtotal for i in systems.contract_invoices(cid)]
    assert subtotals == [usd("5500.00"), usd("500.00"), usd("200.00")]
    assert all(u.billed_on for u in systems.usage)
    assert systems.revenue_by_line(cid, "USD") == {"L1": usd("6200.00")}


def annual_subscription() -> DealSubmission:
    line = make_line("L1", ProductType.SUBSCRIPTION, "1200", quantity="10",
                     product="Ledgerline Platform")  # fmt: skip
    return make_deal([line], start=date(2027, 1, 1), end=date(2027, 12, 31), deal_id=deal_id(),
                     frequency=BillingFrequency.ANNUALLY)  # fmt: skip


async def test_a_cancellation_mid_period_credits_the_unused_days_and_ends_the_contract(
    env: WorkflowEnvironment, worker: Worker, rules: RuleSet, systems: FakeSystems
) -> None:
    """12,000 billed in advance for 2027; cancelled from 2027-07-01: 184 of 365 days unused,
    a credit note of 12,000 × 184 / 365 = 6,049.32 (6,049.315 rounded half-up)."""
    deal = annual_subscription()
    handle = await start_contract(env.client, systems, deal, rules, worker.task_queue)
    cid = deal.deal_id

    await run_until(env, date(2027, 6, 10))
    result = await update(env, handle, ContractWorkflow.amend, Amendment(
        amendment_id="A-9", kind=AmendmentKind.CANCELLATION, effective_date=date(2027, 7, 1),
        requested_by="priya.raman", reason="customer terminated for convenience (clause 14.2)"))  # fmt: skip
    assert result.credit_note is not None
    invoices = systems.contract_invoices(cid)
    credit = invoices[-1]
    assert credit.number == result.credit_note == "LLUS-CN-000001"  # a series of its own
    assert credit.subtotal == usd("-6049.32")
    assert credit.total == usd("-6586.20")  # with NY tax 8.875% (−536.88)
    entry = systems.entries[f"invoice:{credit.number}"]
    assert {ln.account.value: (ln.debit, ln.credit) for ln in entry.lines} == {
        "1100 Accounts receivable": (Decimal(0), Decimal("6586.20")),
        "2400 Deferred revenue": (Decimal("6049.32"), Decimal(0)),
        "2300 Tax payable": (Decimal("536.88"), Decimal(0)),
    }
    schedule = systems.schedules[cid][-1]
    assert max(e.recognition_date for e in schedule) == date(2027, 6, 30)
    assert money_sum((e.amount for e in schedule), "USD") == usd("5950.68")  # 12,000 − 6,049.32
    assert all(e.kind is ScheduleKind.RATABLE for e in schedule)

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await update(env, handle, ContractWorkflow.amend, Amendment(
            amendment_id="A-10", kind=AmendmentKind.SEAT_CHANGE,
            effective_date=date(2027, 6, 20), requested_by="priya.raman", reason="more seats",
            line_id="L1", new_quantity=Decimal(12)))  # fmt: skip
    assert "the contract is cancelled from 2027-07-01" in str(refused.value.cause)

    await run_until(env, date(2027, 7, 2))
    outcome = await handle.result()
    assert outcome.status is ContractStatus.CANCELLED
    assert systems.finished == [cid]


def tm_contract() -> DealSubmission:
    """Consulting at 180 USD an hour for 2027, billed monthly in arrears on approved hours."""
    line = make_line("L1", ProductType.SERVICES, "180", quantity="500", product="Consulting",
                     recognition=RecognitionType.TIME_AND_MATERIALS)  # fmt: skip
    return make_deal([line], start=date(2027, 1, 1), end=date(2027, 12, 31), deal_id=deal_id(),
                     frequency=BillingFrequency.TIME_AND_MATERIALS,
                     recognition=RecognitionType.TIME_AND_MATERIALS)  # fmt: skip


async def test_approved_hours_are_earned_when_approved_and_invoiced_after_the_month(
    env: WorkflowEnvironment, worker: Worker, rules: RuleSet, systems: FakeSystems
) -> None:
    deal = tm_contract()
    handle = await start_contract(env.client, systems, deal, rules, worker.task_queue,
                                  first_invoice_billed=False)  # fmt: skip
    await run_until(env, date(2027, 3, 20))
    approval = TimeApproval(approval_id="T-2027-03-a", approved_by="tom.okafor", entries=[
        TimeEntry(entry_id="E1", line_id="L1", work_date=date(2027, 3, 15),
                  description="Data migration workshop", quantity=Decimal("7.5")),
        TimeEntry(entry_id="E2", line_id="L1", work_date=date(2027, 3, 16),
                  description="Cut-over rehearsal", quantity=Decimal(6)),
    ])  # fmt: skip
    result = await update(env, handle, ContractWorkflow.approve_time, approval)
    assert result.recognised == usd("2430.00")  # 13.5 h × 180
    assert systems.contract_invoices(deal.deal_id) == []  # billed after the month ends

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await update(env, handle, ContractWorkflow.approve_time, approval.model_copy(update={
            "approval_id": "T-bad", "entries": [TimeEntry(
                entry_id="E9", line_id="L7", work_date=date(2027, 4, 30),
                description="future work", quantity=Decimal(1))]}))  # fmt: skip
    message = str(refused.value.cause)
    assert "entries[0].line_id: 'L7' is not a T&M line of this contract (L1)" in message
    assert "entries[0].work_date: 2027-04-30 is outside the service dates" in message

    await run_until(env, date(2027, 4, 2))
    [invoice] = systems.contract_invoices(deal.deal_id)
    assert invoice.subtotal == usd("2430.00")
    assert invoice.invoice_date == date(2027, 4, 1)
    # Earned in March, billed in April: the invoice clears the unbilled receivable.
    assert systems.balances(deal.deal_id, "USD").unbilled_receivable == usd("0")
    assert systems.balances(deal.deal_id, "USD").recognised == usd("2430.00")


async def test_a_credit_offsets_the_invoice_it_names_and_credit_hold_holds_new_service(
    env: WorkflowEnvironment, worker: Worker, rules: RuleSet, systems: FakeSystems
) -> None:
    """Monthly 1,000. A 1,500 service credit for periods 3 and 4: March bills 0 (1,000
    used), April 500 (the last 500). The customer goes on credit hold before May: May is not
    invoiced until the hold is released, then it is, with its own date."""
    line = make_line("L1", ProductType.SUBSCRIPTION, "1200", quantity="10",
                     product="Ledgerline Platform")  # fmt: skip
    deal = make_deal([line], start=date(2027, 1, 1), end=date(2027, 12, 31), deal_id=deal_id(),
                     frequency=BillingFrequency.MONTHLY)  # fmt: skip
    handle = await start_contract(env.client, systems, deal, rules, worker.task_queue)
    await run_until(env, date(2027, 2, 10))
    await update(env, handle, ContractWorkflow.grant_credit, Credit(
        credit_id="SC-7", amount=Decimal(1500), reason="SLA breach in January (99.2% uptime)",
        granted_by="daniel.cho", applies_to_periods=[3, 4]))  # fmt: skip
    await run_until(env, date(2027, 4, 20))
    systems.credit_hold.add(deal.customer.customer_id)
    await run_until(env, date(2027, 5, 10))
    subtotals = [i.subtotal for i in systems.contract_invoices(deal.deal_id)]
    assert subtotals == [usd("1000"), usd("1000"), usd("0"), usd("500")]
    state = await handle.query(ContractWorkflow.state)
    assert state.on_credit_hold
    assert any(e.kind == "invoice.held" for e in state.events)

    systems.credit_hold.clear()
    await handle.signal(ContractWorkflow.credit_hold_released)
    await run_until(env, date(2027, 5, 11))
    may = systems.contract_invoices(deal.deal_id)[-1]
    assert may.subtotal == usd("1000")
    assert may.invoice_date == date(2027, 5, 10)


async def test_an_invoice_the_mail_server_refuses_goes_to_billing_as_a_case(
    env: WorkflowEnvironment, worker: Worker, rules: RuleSet, systems: FakeSystems
) -> None:
    deal = milestone_project()
    handle = await start_contract(env.client, systems, deal, rules, worker.task_queue)
    systems.undeliverable = True
    await run_until(env, date(2027, 2, 26))
    m1 = await update(env, handle, ContractWorkflow.deliver_milestone,
                      accepted("M1", date(2027, 2, 26)))  # fmt: skip
    state = await handle.query(ContractWorkflow.state)
    assert state.undelivered_invoices == [m1.invoice_number]
    case_id = f"case-contract-{deal.deal_id}-dispatch-{m1.invoice_number}"
    case = await env.client.get_workflow_handle(case_id).describe()
    assert case.status is not None
    systems.workflow_ids.add(case_id)

    # Billing finds the right address: the first one they try bounces too, the second works.
    systems.refused_addresses.add("ap-typo@acme-corp.com")
    resend = InvoiceResend(invoice_number=m1.invoice_number, email="ap-typo@acme-corp.com",
                           requested_by="bea.billing", reason="AP moved to a shared mailbox")  # fmt: skip
    with pytest.raises(WorkflowUpdateFailedError) as bounced:
        await update(env, handle, ContractWorkflow.resend_invoice, resend)
    assert f"invoice_number: {m1.invoice_number} could not be re-sent" in str(bounced.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as unknown:
        await update(env, handle, ContractWorkflow.resend_invoice,
                     resend.model_copy(update={"invoice_number": "LLUS-999999"}))  # fmt: skip
    assert "invoice_number: LLUS-999999 is not an undelivered invoice of this contract" in str(
        unknown.value.cause
    )
    sent = await update(env, handle, ContractWorkflow.resend_invoice,
                        resend.model_copy(update={"email": "ap-shared@acme-corp.com"}))  # fmt: skip
    assert sent.resend == 2 and sent.case_withdrawn == case_id
    state = await handle.query(ContractWorkflow.state)
    assert state.undelivered_invoices == []
    assert systems.billing_contacts[deal.customer.customer_id] == "ap-shared@acme-corp.com"
    case_state = await env.client.get_workflow_handle(case_id).query(ExceptionCaseWorkflow.state)
    assert case_state.status is CaseStatus.WITHDRAWN

    # The next invoice goes to the corrected contact, first time.
    systems.undeliverable = False
    await run_until(env, date(2027, 5, 28))
    m2 = await update(env, handle, ContractWorkflow.deliver_milestone,
                      accepted("M2", date(2027, 5, 28)))  # fmt: skip
    invoice = next(
        i for i in systems.contract_invoices(deal.deal_id) if i.number == m2.invoice_number
    )
    assert invoice.bill_to_contact.email == "ap-shared@acme-corp.com"
