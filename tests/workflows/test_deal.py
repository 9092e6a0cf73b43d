"""The deal workflow on the time-skipping server, with the outside systems faked in memory."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.case import CaseState, CaseStatus, Resolution
from models.contract_terms import booked_consideration
from models.customer import CustomerStanding
from models.deal import (
    BillingFrequency,
    DealLine,
    DealSubmission,
    PaymentTerms,
    ProductType,
    RecognitionType,
)
from models.deal_flow import DealInput, DealOutcome, DealStage
from models.money import Money
from models.rules import Role, RuleSet
from starter.deal_start import initial_search_attributes, start_deal
from tests.builders import make_deal, make_line
from tests.workflows.fake_activities import FakeSystems
from workflows import search_attributes as sa
from workflows.contract import ContractWorkflow
from workflows.deal import DealWorkflow
from workflows.exception_case import ExceptionCaseWorkflow


def annual_saas(**overrides: object) -> DealSubmission:
    """USD 120,000, 12 months from 2026-01-01, billed annually in advance, paid upfront (a new
    customer above USD 10,000 must pay upfront under the credit policy), NY tax 8.875%."""
    fields: dict[str, object] = {
        "payment_terms": PaymentTerms.UPFRONT,
        "deal_id": f"D-{uuid.uuid4().hex[:8]}",
        **overrides,
    }
    line = make_line(
        "L1", ProductType.SUBSCRIPTION, "1000", quantity="120", product="Ledgerline Platform"
    )
    return make_deal([line], **fields)  # type: ignore[arg-type]


async def start(
    client: Client, deal: DealSubmission, rules: RuleSet, task_queue: str
) -> WorkflowHandle[DealWorkflow, DealOutcome]:
    result = await start_deal(
        client, DealInput(deal=deal, source="api", submitted_by="test", rules=rules), task_queue
    )
    assert result.started
    return client.get_workflow_handle_for(DealWorkflow.run, result.workflow_id)


async def case_handle(
    client: Client, deal_id: str, check_id: str
) -> WorkflowHandle[ExceptionCaseWorkflow, object]:
    return client.get_workflow_handle_for(
        ExceptionCaseWorkflow.run, f"case-deal-{deal_id}-{check_id}"
    )


async def wait_for_case(
    env: WorkflowEnvironment, deal: WorkflowHandle[DealWorkflow, DealOutcome], check_id: str
) -> None:
    for _ in range(100):
        state = await deal.query(DealWorkflow.state)
        if any(c.check_id == check_id for c in state.open_cases):
            return
        await env.sleep(0.1)
    raise AssertionError(
        f"no case opened for {check_id}; gates: {[g.check_id for g in state.gates if not g.passed]}"
    )


async def test_clean_annual_deal_is_invoiced_and_deferred(
    env: WorkflowEnvironment, worker: Worker, rules: RuleSet, systems: FakeSystems
) -> None:
    """120 seats x 1,000 USD = 120,000 USD; NY tax 8.875% = 10,650.00; invoice 130,650.00 USD.
    The subscription is ratable, so on day one nothing is recognised beyond elapsed months."""
    deal = annual_saas(start_date=date(2030, 1, 1), end_date=date(2030, 12, 31))
    handle = await start(env.client, deal, rules, worker.task_queue)
    outcome = await handle.result()
    assert outcome.stage is DealStage.COMPLETED
    invoice = next(iter(systems.invoices.values()))
    assert outcome.invoice_number == invoice.number == "LLUS-000001"
    assert invoice.subtotal == Money.of("120000.00", "USD")
    assert invoice.tax == Money.of("10650.00", "USD")
    assert invoice.total == Money.of("130650.00", "USD")
    assert outcome.recognised == Money.of(0, "USD")
    assert outcome.deferred_revenue == Money.of("120000.00", "USD")
    state = await handle.query(DealWorkflow.state)
    assert all(g.passed for g in state.gates), [g.messages for g in state.gates if not g.passed]
    assert [e.key for e in state.postings] == ["invoice:LLUS-000001"]
    listed = (await handle.describe()).typed_search_attributes
    assert listed.get(sa.STAGE) == "completed" and listed.get(sa.OWNER_ROLE) == ""
    assert listed.get(sa.AMOUNT) == 120000.0 and listed.get(sa.CURRENCY) == "USD"
    assert systems.contracts[deal.deal_id].deal == deal


async def test_missing_po_opens_billing_case_and_amend_recheck_passes(
    env: WorkflowEnvironment, worker: Worker, rules: RuleSet, systems: FakeSystems
) -> None:
    deal = annual_saas(po_required=True, po_number=None)
    handle = await start(env.client, deal, rules, worker.task_queue)
    await wait_for_case(env, handle, "structural.po_present")
    case = await case_handle(env.client, deal.deal_id, "structural.po_present")
    listed = (await handle.describe()).typed_search_attributes
    assert listed.get(sa.STAGE) == "awaiting_resolution" and listed.get(sa.OWNER_ROLE) == "billing"
    case_state: CaseState = await case.query(ExceptionCaseWorkflow.state)
    assert case_state.owner_role is Role.BILLING
    assert "requires a PO" in case_state.messages[0]
    await case.execute_update(ExceptionCaseWorkflow.resolve, Resolution(
        action="amend", actor="maria.santos",
        reason_code="DATA_CORRECTED", amendments={"po_number": "PO-77812"}))  # fmt: skip
    outcome = await handle.result()
    assert outcome.stage is DealStage.COMPLETED
    assert next(iter(systems.invoices.values())).po_number == "PO-77812"
    state = await handle.query(DealWorkflow.state)
    assert state.gate_runs == 2 and all(g.passed for g in state.gates)


async def test_excess_discount_approved_by_vp_revops(
    env: WorkflowEnvironment, worker: Worker, rules: RuleSet
) -> None:
    line = make_line("L1", ProductType.SUBSCRIPTION, "550", quantity="120").model_copy(
        update={"list_price": Decimal(1000), "discount_percent": Decimal(45)})  # fmt: skip
    deal = make_deal([line], payment_terms=PaymentTerms.UPFRONT, deal_id="D-discount")
    handle = await start(env.client, deal, rules, worker.task_queue)
    await wait_for_case(env, handle, "business.discount_tolerance")
    case = await case_handle(env.client, deal.deal_id, "business.discount_tolerance")
    await case.signal(ExceptionCaseWorkflow.resolve_signal, Resolution(
        action="approve", actor="daniel.cho", reason_code="PRICING_EXCEPTION"))  # fmt: skip
    outcome = await handle.result()
    assert outcome.stage is DealStage.COMPLETED
    state = await handle.query(DealWorkflow.state)
    assert state.accepted_checks == ["business.discount_tolerance"]


async def test_wrong_role_and_self_approved_override_are_refused(
    env: WorkflowEnvironment, worker: Worker, rules: RuleSet, systems: FakeSystems
) -> None:
    # An enterprise customer (USD 2M ARR already): net 60 is still outside its terms.
    systems.standings["C-100"] = CustomerStanding(
        customer_id="C-100", prior_orders=3, existing_arr_usd=Decimal(2_000_000)
    )
    deal = annual_saas(payment_terms=PaymentTerms.NET_60)
    handle = await start(env.client, deal, rules, worker.task_queue)
    await wait_for_case(env, handle, "business.nonstandard_terms")
    case = await case_handle(env.client, deal.deal_id, "business.nonstandard_terms")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await case.execute_update(ExceptionCaseWorkflow.resolve, Resolution(
            action="approve", actor="priya.raman", reason_code="LEGAL_APPROVED"))  # fmt: skip
    assert "does not hold legal" in str(refused.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await case.execute_update(ExceptionCaseWorkflow.resolve, Resolution(
            action="override", actor="grace.liu",
            reason_code="LEGAL_APPROVED", approver="grace.liu"))  # fmt: skip
    assert "segregation of duties" in str(refused.value.cause)
    await case.signal(ExceptionCaseWorkflow.resolve_signal, Resolution(
        action="approve", actor="priya.raman", reason_code="NOPE"))  # fmt: skip
    state: CaseState = await case.query(ExceptionCaseWorkflow.state)
    assert state.status is CaseStatus.OPEN
    assert len(state.refusals) == 1 and "NOPE" in state.refusals[0].why[1]
    await case.execute_update(ExceptionCaseWorkflow.resolve, Resolution(
        action="override", actor="grace.liu",
        reason_code="LEGAL_APPROVED", approver="samuel.ortiz",
        override_expires_on=date(2027, 3, 31)))  # fmt: skip
    # Net 60 is also outside the credit policy for a new customer: finance owns that case.
    await wait_for_case(env, handle, "business.payment_terms_policy")
    terms = await case_handle(env.client, deal.deal_id, "business.payment_terms_policy")
    await terms.execute_update(ExceptionCaseWorkflow.resolve, Resolution(
        action="approve", actor="aisha.khan", reason_code="CREDIT_APPROVED"))  # fmt: skip
    outcome = await handle.result()
    assert outcome.stage is DealStage.COMPLETED
    deal_state = await handle.query(DealWorkflow.state)
    assert sorted(deal_state.accepted_checks) == [
        "business.nonstandard_terms",
        "business.payment_terms_policy",
    ]


async def test_rejected_deal_issues_nothing(
    env: WorkflowEnvironment, worker: Worker, rules: RuleSet, systems: FakeSystems
) -> None:
    deal = annual_saas(total_contract_value=Decimal(125000))
    handle = await start(env.client, deal, rules, worker.task_queue)
    await wait_for_case(env, handle, "structural.lines_total_tcv")
    case = await case_handle(env.client, deal.deal_id, "structural.lines_total_tcv")
    await case.execute_update(ExceptionCaseWorkflow.resolve, Resolution(
        action="reject", actor="priya.raman", reason_code="INVALID_DATA"))  # fmt: skip
    outcome = await handle.result()
    assert outcome.stage is DealStage.REJECTED
    assert systems.invoices == {} and systems.entries == {} and systems.contracts == {}
    assert [(o.stage, o.outcome) for o in systems.outcomes] == [("rejected", "rejected at QA")]


async def test_duplicate_trigger_starts_nothing(
    env: WorkflowEnvironment, worker: Worker, rules: RuleSet
) -> None:
    deal = annual_saas()
    data = DealInput(deal=deal, source="api", submitted_by="test", rules=rules)
    first = await start_deal(env.client, data, worker.task_queue)
    again = await start_deal(env.client, data, worker.task_queue)
    assert first.started and not again.started
    assert again.message == f"duplicate: workflow deal-{deal.deal_id} already handles this deal"
    await env.client.get_workflow_handle(first.workflow_id).result()
    after = await start_deal(env.client, data, worker.task_queue)
    assert not after.started


async def test_milestone_deal_waits_for_delivery_before_billing(
    env: WorkflowEnvironment, worker: Worker, rules: RuleSet
) -> None:
    from tests.builders import make_milestone

    line = make_line("IMP", ProductType.SERVICES, "60000", recognition=RecognitionType.MILESTONE)
    deal = make_deal([line], frequency=BillingFrequency.MILESTONE, recognition=RecognitionType.MILESTONE,
                     payment_terms=PaymentTerms.UPFRONT, annual_recurring_value=Decimal(0), deal_id="D-milestone",
                     milestones=[make_milestone("M1", "IMP", date(2026, 3, 1), "20000"),
                                 make_milestone("M2", "IMP", date(2026, 6, 1), "40000")])  # fmt: skip
    outcome = await (await start(env.client, deal, rules, worker.task_queue)).result()
    assert outcome.stage is DealStage.COMPLETED
    assert outcome.invoice_number is None
    assert outcome.recognised == Money.of(0, "USD")


async def test_contract_starts_with_its_discounts_booked_and_listed(
    env: WorkflowEnvironment, worker: Worker, rules: RuleSet, systems: FakeSystems
) -> None:
    """10 seats at 1,000 list, 10% off (900) through 2030-06-30, for 2030, billed annually.
    book_contract records the discount as a pricing exception with the contract, so the
    contract workflow starts knowing its open discount and with its search attributes set,
    and runs no activity of its own before e-mailing the first invoice."""
    line = DealLine(
        line_id="L1", product="Ledgerline Platform", product_type=ProductType.SUBSCRIPTION,
        quantity=Decimal(10), list_price=Decimal(1000), net_price=Decimal(900),
        standalone_selling_price=Decimal(900), discount_percent=Decimal(10),
        discount_expiry=date(2030, 6, 30),
    )  # fmt: skip
    draft = annual_saas(start_date=date(2030, 1, 1), end_date=date(2030, 12, 31))
    draft = draft.model_copy(update={"lines": [line]})
    tcv = booked_consideration(draft, line).amount
    deal = draft.model_copy(update={"total_contract_value": tcv, "annual_recurring_value": tcv})
    outcome = await (await start(env.client, deal, rules, worker.task_queue)).result()
    assert outcome.stage is DealStage.COMPLETED
    assert systems.pricing_exceptions == {"discount-L1": "active"}
    contract = env.client.get_workflow_handle_for(ContractWorkflow.run, f"contract-{deal.deal_id}")
    for _ in range(100):  # until it waits for its next date, the first invoice e-mailed
        events = [e async for e in contract.fetch_history_events()]
        if any(e.HasField("timer_started_event_attributes") for e in events):
            break
        await env.sleep(0.1)
    state = await contract.query(ContractWorkflow.state)
    assert state.open_discounts == [("discount-L1", date(2030, 6, 30))]
    listed = (await contract.describe()).typed_search_attributes
    assert listed.get(sa.STAGE) == "active" and listed.get(sa.CURRENCY) == "USD"
    assert listed.get(sa.AMOUNT) == float(tcv)
    ran = [e.activity_task_scheduled_event_attributes.activity_type.name
           for e in events if e.HasField("activity_task_scheduled_event_attributes")]  # fmt: skip
    assert ran == ["dispatch_invoice"]


async def start_as_before(
    client: Client, rules: RuleSet, task_queue: str, *, starts_contract: bool = False
) -> WorkflowHandle[DealWorkflow, DealOutcome]:
    """A deal started as earlier code started it: the input without the marks `start_deal`
    sets today (`starts_contract` only if asked), as in histories recorded before them."""
    deal = annual_saas()
    data = DealInput(deal=deal, source="api", submitted_by="test", rules=rules,
                     starts_contract=starts_contract)  # fmt: skip
    return await client.start_workflow(
        DealWorkflow.run, data, id=f"deal-{deal.deal_id}", task_queue=task_queue,
        search_attributes=initial_search_attributes(data),
    )  # fmt: skip


async def test_deals_started_today_pay_for_no_patch_marker(
    env: WorkflowEnvironment, worker: Worker, rules: RuleSet
) -> None:
    """`start_deal` marks the input as begun on contract-workflow code: the history holds no
    `contract-workflow` marker and no TemporalChangeVersion write, and the deal's only
    search-attribute upsert is its final stage. An input without the mark (as in histories
    recorded before it existed) still starts the contract, behind the patch."""

    async def history_of(handle: WorkflowHandle[DealWorkflow, DealOutcome]) -> list[str]:
        described = []
        async for e in handle.fetch_history_events():
            if e.HasField("marker_recorded_event_attributes"):
                described.append(f"marker {e.marker_recorded_event_attributes.marker_name}")
            if e.HasField("upsert_workflow_search_attributes_event_attributes"):
                fields = e.upsert_workflow_search_attributes_event_attributes.search_attributes
                described.append(f"upsert {sorted(fields.indexed_fields)}")
        return described

    marked = await start(env.client, annual_saas(), rules, worker.task_queue)
    unmarked = await start_as_before(env.client, rules, worker.task_queue)
    for handle in (marked, unmarked):
        assert (await handle.result()).stage is DealStage.COMPLETED
    assert await history_of(marked) == ["upsert ['RevopsStage']"]
    assert await history_of(unmarked) == [
        "marker core_patch",
        "upsert ['TemporalChangeVersion']",
        "upsert ['RevopsStage']",
    ]
    for deal in (marked, unmarked):
        state = await deal.query(DealWorkflow.state)
        assert state.contract_workflow_id == f"contract-{state.deal_id}"


async def test_the_final_stage_is_published_with_the_completion(
    env: WorkflowEnvironment, worker: Worker, rules: RuleSet
) -> None:
    """A deal started today publishes its final stage in its last workflow task, beside its
    completion (the closed record then carries it, and the server skips the upsert); an input
    from before (no `stage_with_close`) replays in its old order, the upsert before the
    outcome's audit."""

    async def tail(handle: WorkflowHandle[DealWorkflow, DealOutcome]) -> list[str]:
        kinds = []
        async for e in handle.fetch_history_events():
            if e.HasField("upsert_workflow_search_attributes_event_attributes"):
                kinds.append("upsert")
            elif e.HasField("activity_task_scheduled_event_attributes"):
                kinds.append(e.activity_task_scheduled_event_attributes.activity_type.name)
            elif e.HasField("workflow_execution_completed_event_attributes"):
                kinds.append("completed")
        return kinds[-3:]

    today = await start(env.client, annual_saas(), rules, worker.task_queue)
    earlier = await start_as_before(env.client, rules, worker.task_queue, starts_contract=True)
    for handle in (today, earlier):
        assert (await handle.result()).stage is DealStage.COMPLETED
        listed = (await handle.describe()).typed_search_attributes
        assert listed.get(sa.STAGE) == "completed"
        assert (await handle.query(DealWorkflow.state)).stage is DealStage.COMPLETED
    assert await tail(today) == ["record_outcome", "upsert", "completed"]
    assert await tail(earlier) == ["upsert", "record_outcome", "completed"]
