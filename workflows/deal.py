"""The revenue-event workflow of one closed-won deal (`deal-<crm id>`).

Runbook: read the deal (from the CRM when it came by webhook) → QA gates, with an
exception case per failed check until every check passes or is accepted → book customer
and contract → first invoice → recognition schedule and initial journal entries → outcome.

Queries: `state` (a `DealState`). The human work happens on the child case workflows
(`case-deal-<id>-<check>`): resolve them, and this workflow moves on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.crm import CrmActivities, ReadCrmDealInput
    from activities.invoicing import InvoicingActivities, IssueInvoiceInput
    from activities.ledger import LedgerActivities, PostRecognitionInput
    from activities.records import (
        DATA_MISMATCH,
        BookContractInput,
        LoadStandingInput,
        RecordGatesInput,
        RecordOutcomeInput,
        RecordsActivities,
    )
    from models.billing import BillingEvent, first_invoice
    from models.case import CaseInput, CaseOutcome, ResolutionAction
    from models.contract_flow import ContractInput, ContractStatus
    from models.contract_invoicing import first_period_billed
    from models.contract_terms import ContractTerms, has_work_after_first_invoice
    from models.customer import CustomerStanding
    from models.deal import DealSubmission
    from models.deal_flow import DealInput, DealOutcome, DealStage, DealState, OpenCase
    from models.invoice import draft_invoice
    from models.qa import GateResult, run_gates
    from models.recognition import build_schedule
    from models.rules import Role
    from workflows import STEP_RETRY, STEP_TIMEOUT
    from workflows import search_attributes as sa
    from workflows.contract import ContractWorkflow
    from workflows.exception_case import ExceptionCaseWorkflow


CRM_READ_CHECK = "integration.crm_read"
MISMATCH_CHECK = "integrity.contract_mismatch"

# Stages that last as long as one database step: visible in the `state` query, not worth
# a search-attribute event each.
TRANSIENT_STAGES = frozenset({DealStage.BOOKING, DealStage.INVOICING, DealStage.RECOGNISING})


@workflow.defn
class DealWorkflow:
    @workflow.init
    def __init__(self, data: DealInput) -> None:
        self._rules = data.rules
        self._submitted_by = data.submitted_by
        deal_id = data.deal.deal_id if data.deal else str(data.crm_deal_id)
        self._state = DealState(
            deal_id=deal_id, stage=DealStage.QA, source=data.source, deal=data.deal,
            rules_version=data.rules.version, started_at=workflow.now(),
        )  # fmt: skip
        self._stage_with_close = data.stage_with_close
        self._schedule_stored = False
        self._exceptions_booked = False
        self._first_event: BillingEvent | None = None  # the first invoice's lines
        self._standing: CustomerStanding | None = None
        self._cases: dict[
            str, workflow.ChildWorkflowHandle[ExceptionCaseWorkflow, CaseOutcome]
        ] = {}

    @workflow.run
    async def run(self, data: DealInput) -> DealOutcome:
        deal = data.deal or await self._read_from_crm(str(data.crm_deal_id))
        if deal is None:
            return await self._finish(DealStage.REJECTED, "rejected: the CRM could not be read")
        self._standing = await self._load_standing(deal)
        if not await self._pass_gates(self._standing):
            return await self._finish(DealStage.REJECTED, "rejected at QA")
        booked = await self._book_contract(self._deal)
        if booked is None:
            return await self._finish(DealStage.REJECTED, "rejected: contract data mismatch")
        deal = booked
        await self._issue_first_invoice(deal)
        await self._recognise(deal)
        invoiced = self._state.invoice is not None
        # Deals started before the contract workflow existed replay without one; their input
        # lacks `starts_contract`, so only they pay for the patch marker.
        contract_code = data.starts_contract or workflow.patched("contract-workflow")
        if contract_code and (invoiced or has_work_after_first_invoice(deal)):
            await self._start_contract(deal)
        return await self._finish(DealStage.COMPLETED, "booked, invoiced and posted")

    @workflow.query
    def state(self) -> DealState:
        if not self._schedule_stored:
            return self._state
        # book_contract stored the schedule this same pure function builds; it is computed
        # when asked for, so it never travels through (or bloats) the history.
        return self._state.model_copy(update={"schedule": build_schedule(self._deal)})

    @property
    def _deal(self) -> DealSubmission:
        assert self._state.deal is not None
        return self._state.deal

    # --- steps ------------------------------------------------------------------------------

    async def _read_from_crm(self, crm_deal_id: str) -> DealSubmission | None:
        """The deal as the CRM holds it; None when the integration case was rejected."""
        self._set_stage(DealStage.READING_CRM)
        attempts = self._rules.integrations.crm_read_attempts
        while True:
            try:
                result = await workflow.execute_activity_method(
                    CrmActivities.read_crm_deal, ReadCrmDealInput(crm_deal_id=crm_deal_id),
                    start_to_close_timeout=STEP_TIMEOUT,
                    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30),
                                             maximum_attempts=attempts),
                    summary="read the deal, company, contact and line items from HubSpot",
                )  # fmt: skip
                break
            except ActivityError as exc:
                if not await self._integration_failed(CRM_READ_CHECK, crm_deal_id, attempts, exc):
                    return None
        if result.deal is None:
            raise ApplicationError(
                f"deal {crm_deal_id} in the CRM is not valid: " + "; ".join(result.errors),
                type="InvalidDealData", non_retryable=True,
            )  # fmt: skip
        self._state.deal = result.deal
        return result.deal

    async def _integration_failed(
        self, check_id: str, what: str, attempts: int, exc: ActivityError
    ) -> bool:
        """Open an integration_failure case for the owning team after `attempts` failed
        tries; True when they resolved it (fixed: try again), False when rejected."""
        cause = exc.cause or exc
        owner = self._rules.owner_of(check_id)
        self._set_stage(DealStage.AWAITING_RESOLUTION)
        handle = await self._start_case(
            check_id, owner,
            [f"{check_id}: {what} failed {attempts} times; last error: {cause}",
             "resolve with approve once the integration works again (the step is retried), "
             "or reject to stop this deal"],
            {"attempts": str(attempts), "error": str(cause)[:500]}, None,
        )  # fmt: skip
        self._cases[check_id] = handle
        self._state.open_cases = [OpenCase(case_id=handle.id, check_id=check_id, owner_role=owner)]
        self._publish()
        outcome = await self._next_case_outcome()
        self._state.open_cases = []
        action = outcome.resolution.action if outcome.resolution else None
        self._set_stage(DealStage.READING_CRM)
        return action is not ResolutionAction.REJECT

    async def _load_standing(self, deal: DealSubmission) -> CustomerStanding:
        self._set_stage(DealStage.QA)
        return await workflow.execute_activity_method(
            RecordsActivities.load_customer_standing,
            LoadStandingInput(customer_id=deal.customer.customer_id, exclude_deal_id=deal.deal_id,
                              usd_rates=self._rules.credit.usd_rates),
            start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
            summary="read the customer's credit standing",
        )  # fmt: skip

    async def _pass_gates(self, standing: CustomerStanding) -> bool:
        """Run the gates until every check passes or is accepted; False when rejected."""
        while True:
            failing = await self._run_gates(standing)
            await self._sync_cases(failing)
            if not failing:
                return True
            self._set_stage(DealStage.AWAITING_RESOLUTION)
            outcome = await self._next_case_outcome()
            if not await self._apply(outcome):
                return False
            self._set_stage(DealStage.QA)

    async def _run_gates(self, standing: CustomerStanding) -> dict[str, GateResult]:
        self._state.gate_runs += 1
        results = run_gates(self._deal, standing, self._rules)
        self._state.gates = results
        await workflow.execute_activity_method(
            RecordsActivities.record_gate_results,
            RecordGatesInput(deal_id=self._state.deal_id, run_no=self._state.gate_runs,
                             results=results, deal=self._deal, standing=standing,
                             rules_version=self._rules.version,
                             submitted_by=self._submitted_by, source=self._state.source),
            start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
            summary=f"store QA gate results (run {self._state.gate_runs})",
        )  # fmt: skip
        accepted = set(self._state.accepted_checks)
        return {r.check_id: r for r in results if not r.passed and r.check_id not in accepted}

    async def _sync_cases(self, failing: dict[str, GateResult]) -> None:
        """Withdraw cases whose check now passes; open one for each new failure."""
        for check_id in [c for c in self._cases if c not in failing]:
            await self._withdraw(check_id, "the check passes after an amendment")
        for check_id, result in failing.items():
            if check_id not in self._cases:
                await self._open_case(result)
        self._state.open_cases = [
            OpenCase(case_id=h.id, check_id=c, owner_role=self._rules.owner_of(c))
            for c, h in self._cases.items()
        ]
        self._publish()

    async def _open_case(self, result: GateResult) -> None:
        self._cases[result.check_id] = await self._start_case(
            result.check_id, result.owner_role, result.messages, result.evidence, self._deal
        )

    async def _start_case(
        self, check_id: str, owner: Role, messages: list[str], evidence: dict[str, str],
        deal: DealSubmission | None,
    ) -> workflow.ChildWorkflowHandle[ExceptionCaseWorkflow, CaseOutcome]:  # fmt: skip
        case_id = f"case-deal-{self._state.deal_id}-{check_id}"
        return await workflow.start_child_workflow(
            ExceptionCaseWorkflow.run,
            CaseInput(case_id=case_id, subject=f"deal:{self._state.deal_id}", deal=deal,
                      check_id=check_id, owner_role=owner, messages=messages,
                      evidence=evidence, rules_version=self._rules.version),
            id=case_id, id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=sa.case_attributes(owner.value, check_id),
            static_summary=f"{check_id} failed on deal {self._state.deal_id}: "
            f"waiting for {owner.value}",
        )  # fmt: skip

    async def _withdraw(self, check_id: str, reason: str) -> None:
        handle = self._cases.pop(check_id)
        await handle.signal(ExceptionCaseWorkflow.withdraw, reason)
        await handle

    async def _next_case_outcome(self) -> CaseOutcome:
        handles = list(self._cases.values())
        await workflow.wait(handles, return_when="FIRST_COMPLETED")
        check_id = next(c for c, h in self._cases.items() if h.done())
        outcome = self._cases.pop(check_id).result()
        self._state.resolutions.append(outcome)
        return outcome

    async def _apply(self, outcome: CaseOutcome) -> bool:
        """Take a resolution into the deal; False when the deal is rejected."""
        action = outcome.resolution.action if outcome.resolution else None
        if action is ResolutionAction.REJECT:
            for check_id in list(self._cases):
                await self._withdraw(check_id, "the deal was rejected")
            self._state.open_cases = []
            return False
        if action in (ResolutionAction.APPROVE, ResolutionAction.OVERRIDE):
            self._state.accepted_checks.append(outcome.check_id)
        if outcome.amended_deal is not None:
            self._state.deal = outcome.amended_deal
            # Open cases carry the old deal; reopen them on the amended one.
            for check_id in list(self._cases):
                await self._withdraw(check_id, "the deal was amended; re-checking")
        return True

    async def _book_contract(self, deal: DealSubmission) -> DealSubmission | None:
        """Book the contract; on a data mismatch the write is suspended and a case decides:
        amend (re-checked, then booked) or reject (None)."""
        while True:
            self._set_stage(DealStage.BOOKING)
            try:
                booked = await workflow.execute_activity_method(
                    RecordsActivities.book_contract,
                    BookContractInput(deal=deal, usd_rate=self._rules.credit.usd_rates.get(deal.currency, 0),
                                      rules_version=self._rules.version),
                    start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
                    summary="write customer, contract and recognition schedule to the system of record",
                )  # fmt: skip
            except ActivityError as exc:
                cause = exc.cause
                if not (isinstance(cause, ApplicationError) and cause.type == DATA_MISMATCH):
                    raise
                if not await self._mismatch_resolved(cause):
                    return None
                deal = self._deal
                continue
            self._schedule_stored = True
            self._exceptions_booked = booked.exceptions_booked
            return deal

    async def _mismatch_resolved(self, cause: ApplicationError) -> bool:
        """A case for the owners of contract data; True once amended and re-checked."""
        owner = self._rules.owner_of(MISMATCH_CHECK)
        evidence = {k: f"booked {v['booked']}, now {v['incoming']}"
                    for k, v in (cause.details[0] if cause.details else {}).items()}  # fmt: skip
        self._cases[MISMATCH_CHECK] = await self._start_case(
            MISMATCH_CHECK, owner, [cause.message], evidence, self._deal
        )
        self._state.open_cases = [OpenCase(case_id=self._cases[MISMATCH_CHECK].id,
                                           check_id=MISMATCH_CHECK, owner_role=owner)]  # fmt: skip
        self._set_stage(DealStage.AWAITING_RESOLUTION)
        outcome = await self._next_case_outcome()
        self._state.open_cases = []
        if outcome.amended_deal is None:
            return False
        self._state.deal = outcome.amended_deal
        assert self._standing is not None, "loaded before the gates first ran"
        return await self._pass_gates(self._standing)

    async def _issue_first_invoice(self, deal: DealSubmission) -> None:
        self._set_stage(DealStage.INVOICING)
        event = self._first_event = first_invoice(deal)
        if event is None:
            self._state.billing_note = (
                f"nothing billable at signing: billed on {deal.billing_frequency.value}"
            )
            return
        draft = draft_invoice(deal, event, self._rules, issued_on=workflow.now().date())
        result = await workflow.execute_activity_method(
            InvoicingActivities.issue_invoice,
            IssueInvoiceInput(draft=draft, idempotency_key=f"deal:{deal.deal_id}:first-invoice",
                              rules_version=self._rules.version),
            start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
            summary=f"issue the first invoice ({draft.total})",
        )  # fmt: skip
        self._state.invoice = result.invoice
        self._state.balances = result.balances
        if result.entry is not None:
            self._state.postings.append(result.entry)

    async def _recognise(self, deal: DealSubmission) -> None:
        self._set_stage(DealStage.RECOGNISING)
        result = await workflow.execute_activity_method(
            LedgerActivities.post_recognition,
            PostRecognitionInput(deal_id=deal.deal_id, currency=deal.currency,
                                 as_of=workflow.now().date(), rules_version=self._rules.version),
            start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
            summary="post the revenue earned to date under the stored schedule",
        )  # fmt: skip
        self._state.balances = result.balances
        if result.entry is not None:
            self._state.postings.append(result.entry)

    async def _start_contract(self, deal: DealSubmission) -> None:
        """The contract workflow takes over from here: it e-mails the first invoice, then
        bills and earns for the rest of the term, and outlives this one (ABANDON: the deal's
        work is done, the contract's is not)."""
        terms = ContractTerms.booked(deal, self._rules.billing.proration_day_count)
        inv = self._state.invoice
        billed = first_period_billed(terms, self._first_event) if inv else {}
        contract_id = f"contract-{deal.deal_id}"
        await workflow.start_child_workflow(
            ContractWorkflow.run,
            ContractInput(contract_id=deal.deal_id, customer_id=deal.customer.customer_id,
                          terms=terms, rules=self._rules, started_by=workflow.info().workflow_id,
                          billed=billed, next_period=2 if billed else 1,
                          first_invoice=(inv.number, str(inv.total)) if inv else None,
                          exceptions_booked=self._exceptions_booked),
            id=contract_id, parent_close_policy=ParentClosePolicy.ABANDON,
            search_attributes=sa.contract_attributes(ContractStatus.ACTIVE.value,
                                                     float(deal.total_contract_value), deal.currency),
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"contract {deal.deal_id}: {deal.start_date} to {deal.end_date}",
        )  # fmt: skip
        self._state.contract_workflow_id = contract_id

    # --- bookkeeping -----------------------------------------------------------------------

    def _set_stage(self, stage: DealStage) -> None:
        self._state.stage = stage
        if stage not in TRANSIENT_STAGES:
            self._publish()

    def _publish(self) -> None:
        """Upsert the search attributes when what they say changed (each upsert is an event
        in the history, so the millisecond stages between QA and the outcome are not)."""
        deal, owner = self._state.deal, self._state.owner_role()
        wanted: dict[str, Any] = {sa.STAGE.name: self._state.stage.value,
                                  sa.OWNER_ROLE.name: owner.value if owner else ""}  # fmt: skip
        if deal is not None:
            wanted[sa.AMOUNT.name] = float(deal.total_contract_value)
            wanted[sa.CURRENCY.name] = deal.currency
        current = workflow.info().typed_search_attributes
        updates: list[SearchAttributeUpdate[Any]] = [
            key.value_set(wanted[key.name])
            for key in (sa.STAGE, sa.OWNER_ROLE, sa.AMOUNT, sa.CURRENCY)
            if key.name in wanted and current.get(key) != wanted[key.name]
        ]
        if updates:
            workflow.upsert_search_attributes(updates)

    async def _finish(self, stage: DealStage, outcome: str) -> DealOutcome:
        self._state.finished_at = workflow.now()
        self._state.outcome = outcome
        if self._stage_with_close:
            self._state.stage = stage  # published below, with the completion
        else:  # a deal begun on earlier code replays as it ran
            self._set_stage(stage)
        b, inv = self._state.balances, self._state.invoice
        await workflow.execute_activity_method(
            RecordsActivities.record_outcome,
            RecordOutcomeInput(deal_id=self._state.deal_id, stage=stage.value, outcome=outcome,
                               invoice_number=inv.number if inv else None,
                               rules_version=self._rules.version),
            start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
            summary=f"audit the outcome: {stage.value}",
        )  # fmt: skip
        if self._stage_with_close:
            # In the last workflow task, with the completion: the closed record carries the
            # final stage, and the server skips an upsert it processes after the close, so
            # the visibility store is written once instead of twice.
            self._publish()
        return DealOutcome(
            deal_id=self._state.deal_id, stage=stage, outcome=outcome,
            invoice_number=inv.number if inv else None, invoice_total=inv.total if inv else None,
            recognised=b.recognised if b else None, deferred_revenue=b.deferred_revenue if b else None,
        )  # fmt: skip
