"""The contract workflow (`contract-<deal id>`): everything a booked contract bills and
earns after its first invoice, for as long as it runs.

Runbook, each day something is due (a durable timer to the next date, never polling):
- close the discounts that expired (they stop by themselves; the pricing exception is closed);
- invoice the next recurring period in advance, with the settlement of any amendment that
  changed an invoiced period and the credits naming it (held while the customer is on
  credit hold: new service is not invoiced, work already done is);
- after each month ends, invoice the usage and approved T&M not yet invoiced (late usage
  for a month already invoiced goes on the next one).
Then it continues as new: once per billing period (or metered month), so its history stays
small however long the contract runs.

Updates (Web UI, CLI, API): `deliver_milestone`, `approve_time`, `amend`, `grant_credit`.
Signals: `usage_received` (a batch arrived: check the usage threshold), `credit_hold_released`.
Query: `state`.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        AmendmentInput,
        BillingContactInput,
        ContractActivities,
        CreditInput,
        ExceptionStatusInput,
        MeteredInput,
        MilestoneInput,
        StartContractInput,
        TimeInput,
    )
    from activities.invoice_dispatch import DispatchInvoiceInput, InvoiceDispatchActivities
    from activities.invoicing import InvoicingActivities, IssueInvoiceInput
    from activities.ledger import LedgerActivities, PostRecognitionInput
    from models.amendment import (
        Amendment,
        AmendmentKind,
        amendment_problems,
        apply_amendment,
        treatment_of,
    )
    from models.billing import BillingEvent, milestone_invoice_lines
    from models.calendar_math import ONE_DAY, add_months, month_end, period_label
    from models.case import CaseInput
    from models.contract_flow import (
        MAX_EVENTS,
        AmendmentResult,
        ContractEvent,
        ContractInput,
        ContractOutcome,
        ContractState,
        ContractStatus,
        Credit,
        CreditBalance,
        InvoiceResend,
        InvoiceResendResult,
        MilestoneDelivered,
        MilestoneResult,
        TimeApproval,
        TimeApprovalResult,
        open_discounts,
    )
    from models.contract_invoicing import recurring_invoice, settlement_note
    from models.deal import Contact, ProductType, RecognitionType
    from models.invoice import Invoice, draft_invoice
    from models.money import Money
    from workflows import STEP_RETRY, STEP_TIMEOUT
    from workflows import search_attributes as sa
    from workflows.exception_case import ExceptionCaseWorkflow

DISPATCH_CHECK = "integration.invoice_dispatch"
SCHEDULE_DEADLINE_BUSINESS_DAYS = 5


@workflow.defn
class ContractWorkflow:
    @workflow.init
    def __init__(self, data: ContractInput) -> None:
        self._s = data  # the decoded input is this run's own: nothing else holds it
        self._lock = asyncio.Lock()
        self._wake = False
        self._usage_arrived = False
        self._on_hold = False
        self._cycle_done = False

    @workflow.run
    async def run(self, data: ContractInput) -> ContractOutcome:
        if self._s.cycle == 0:
            await self._start()
        while True:
            today = self._today()
            async with self._lock:
                await self._due_work(today)
            if self._finished(today):
                await workflow.wait_condition(workflow.all_handlers_finished)
                return await self._finish()
            if self._cycle_done or workflow.info().is_continue_as_new_suggested():
                break
            due = self._next_due(today)
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._wake, timeout=self._until(due),
                    timeout_summary=f"next contract date {due}",
                )  # fmt: skip
            self._wake = False
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._s.model_copy(update={"cycle": self._s.cycle + 1}))

    # --- queries, signals and updates ---------------------------------------------------------

    @workflow.query
    def state(self) -> ContractState:
        s = self._s
        status = ContractStatus.CANCELLED if s.terms.cancelled_on else ContractStatus.ACTIVE
        return ContractState(
            contract_id=s.contract_id, status=status, terms=s.terms, next_period=s.next_period,
            next_invoice_date=self._next_period_start(), metered_through=s.metered_through,
            delivered=s.delivered, credits=s.credits, open_discounts=s.open_discounts,
            amendments=s.amendments, schedule_version=s.schedule_version,
            on_credit_hold=self._on_hold, undelivered_invoices=s.undelivered_invoices,
            events=s.events, cycle=s.cycle,
        )  # fmt: skip

    @workflow.signal
    def usage_received(self) -> None:
        self._usage_arrived = True
        self._wake = True

    @workflow.signal
    def credit_hold_released(self) -> None:
        self._on_hold = False
        self._wake = True

    @workflow.update
    async def deliver_milestone(self, delivery: MilestoneDelivered) -> MilestoneResult:
        async with self._lock:
            return await self._deliver(delivery)

    @deliver_milestone.validator
    def _check_delivery(self, delivery: MilestoneDelivered) -> None:
        deal, today = self._s.terms.current, self._today()
        known = {m.milestone_id for m in deal.milestones}
        problems = []
        if delivery.milestone_id not in known:
            problems.append(f"milestone_id: {delivery.milestone_id!r} is not a milestone of "
                            f"this contract ({', '.join(sorted(known)) or 'none'})")  # fmt: skip
        elif delivery.milestone_id in self._s.delivered:
            problems.append(f"milestone_id: {delivery.milestone_id} was already accepted")
        if delivery.accepted_on < delivery.delivered_on:
            problems.append("accepted_on: a milestone is accepted on or after its delivery")
        if delivery.accepted_on > today:
            problems.append(
                f"accepted_on: {delivery.accepted_on} is in the future (today is {today})"
            )
        if self._s.terms.cancelled_on and delivery.delivered_on >= self._s.terms.cancelled_on:
            problems.append(
                f"delivered_on: the contract was cancelled from {self._s.terms.cancelled_on}"
            )
        _refuse(problems)

    @workflow.update
    async def approve_time(self, approval: TimeApproval) -> TimeApprovalResult:
        async with self._lock:
            return await self._approve(approval)

    @approve_time.validator
    def _check_time(self, approval: TimeApproval) -> None:
        terms, today = self._s.terms, self._today()
        deal = terms.current
        tm_lines = {ln.line_id for ln in deal.lines
                    if deal.line_recognition(ln) is RecognitionType.TIME_AND_MATERIALS
                    and ln.product_type is not ProductType.USAGE}  # fmt: skip
        problems, seen = [], set()
        for i, e in enumerate(approval.entries):
            if e.line_id not in tm_lines:
                problems.append(f"entries[{i}].line_id: {e.line_id!r} is not a T&M line of this "
                                f"contract ({', '.join(sorted(tm_lines)) or 'none'})")  # fmt: skip
            if not terms.start <= e.work_date <= min(terms.end, today):
                problems.append(f"entries[{i}].work_date: {e.work_date} is outside the service "
                                f"dates {terms.start}..{min(terms.end, today)}")  # fmt: skip
            if e.entry_id in seen:
                problems.append(f"entries[{i}].entry_id: {e.entry_id} appears twice")
            seen.add(e.entry_id)
        _refuse(problems)

    @workflow.update
    async def amend(self, amendment: Amendment) -> AmendmentResult:
        async with self._lock:
            return await self._amend(amendment)

    @amend.validator
    def _check_amendment(self, amendment: Amendment) -> None:
        problems = amendment_problems(self._s.terms, amendment, self._today(),
                                      frozenset(self._s.delivered))  # fmt: skip
        if amendment.amendment_id in self._s.amendments:
            problems.append(f"amendment_id: {amendment.amendment_id} was already taken")
        if self._s.terms.cancelled_on is not None:
            problems.append(f"kind: the contract is cancelled from {self._s.terms.cancelled_on}")
        _refuse(problems)

    @workflow.update
    async def grant_credit(self, credit: Credit) -> None:
        async with self._lock:
            version = self._s.schedule_version + 1
            await self._activity(ContractActivities.record_credit, CreditInput(
                contract_id=self._s.contract_id, credit=credit, currency=self._s.terms.currency,
                granted_on=self._today(), schedule_version=version,
                rules_version=self._s.rules.version),
                f"record credit {credit.credit_id} and schedule v{version}")  # fmt: skip
            self._s.schedule_version = version
            amount = Money(amount=credit.amount, currency=self._s.terms.currency)
            self._s.credits.append(CreditBalance(credit=credit, remaining=amount))
            self._event("credit.granted", f"{credit.credit_id}: {amount} for periods "
                        f"{credit.applies_to_periods} ({credit.reason})")  # fmt: skip

    @grant_credit.validator
    def _check_credit(self, credit: Credit) -> None:
        n, problems = len(self._s.terms.periods), []
        if any(c.credit.credit_id == credit.credit_id for c in self._s.credits):
            problems.append(f"credit_id: {credit.credit_id} was already granted")
        for p in credit.applies_to_periods:
            if not self._s.next_period <= p <= n:
                problems.append(f"applies_to_periods: {p} is not a period still to be invoiced "
                                f"({self._s.next_period}..{n})")  # fmt: skip
        _refuse(problems)

    @workflow.update
    async def resend_invoice(self, request: InvoiceResend) -> InvoiceResendResult:
        async with self._lock:
            return await self._resend(request)

    @resend_invoice.validator
    def _check_resend(self, request: InvoiceResend) -> None:
        if request.invoice_number not in self._s.undelivered_invoices:
            undelivered = ", ".join(self._s.undelivered_invoices) or "none"
            _refuse([f"invoice_number: {request.invoice_number} is not an undelivered invoice of "
                     f"this contract (undelivered: {undelivered})"])  # fmt: skip

    # --- the steps ----------------------------------------------------------------------------

    async def _start(self) -> None:
        deal = self._s.terms.current
        if self._s.exceptions_booked:  # booked with the contract; listed at start
            self._s.open_discounts = open_discounts(deal)
        else:  # a contract whose deal was booked before that
            expiring = await self._activity(ContractActivities.start_contract_records,
                StartContractInput(contract_id=self._s.contract_id, deal=deal,
                                   rules_version=self._s.rules.version),
                "track the contract's discounts as pricing exceptions")  # fmt: skip
            self._s.open_discounts = list(expiring)
            workflow.upsert_search_attributes([
                sa.STAGE.value_set(ContractStatus.ACTIVE.value),
                sa.AMOUNT.value_set(float(deal.total_contract_value)),
                sa.CURRENCY.value_set(deal.currency)])  # fmt: skip
        self._event("contract.started", f"from {deal.start_date} to {deal.end_date}; started by "
                    f"{self._s.started_by}")  # fmt: skip
        if self._s.first_invoice is not None:
            number, total = self._s.first_invoice
            await self._send(number, total)

    async def _due_work(self, today: date) -> None:
        await self._expire_discounts(today)
        await self._invoice_recurring(today)
        await self._invoice_metered(today)
        if self._usage_arrived:
            self._usage_arrived = False
            await self._check_usage_threshold(today)

    async def _expire_discounts(self, today: date) -> None:
        for exception_id, expiry in [d for d in self._s.open_discounts if d[1] < today]:
            await self._activity(ContractActivities.close_pricing_exception, ExceptionStatusInput(
                contract_id=self._s.contract_id, exception_id=exception_id, status="expired",
                closed_on=expiry, rules_version=self._s.rules.version),
                f"close {exception_id}: expired {expiry}")  # fmt: skip
            self._s.open_discounts.remove((exception_id, expiry))
            self._event("discount.expired", f"{exception_id} ran through {expiry}; list price "
                        "from the next day")  # fmt: skip

    async def _invoice_recurring(self, today: date) -> None:
        start = self._next_period_start()
        if start is None or start > today:
            return
        held = await self._activity(ContractActivities.customer_on_credit_hold,
                                    self._s.customer_id, "check credit hold")  # fmt: skip
        if held:
            if not self._on_hold:
                self._event("invoice.held", f"period {self._s.next_period}: the customer is on "
                            "credit hold (new service is not invoiced)")  # fmt: skip
            self._on_hold = True
            return
        self._on_hold = False
        period_no = self._s.next_period
        event, billed, credits = recurring_invoice(self._s.terms, period_no, self._s.billed,
                                                   self._s.credits)  # fmt: skip
        if event is not None:
            await self._issue(event, f"contract:{self._s.contract_id}:period:{period_no}", today)
        self._s.billed, self._s.credits = billed, credits
        self._s.next_period += 1
        self._cycle_done = True

    def _metered(self) -> bool:
        deal = self._s.terms.current
        return any(ln.product_type is ProductType.USAGE
                   or deal.line_recognition(ln) is RecognitionType.TIME_AND_MATERIALS
                   for ln in deal.lines)  # fmt: skip

    def _next_metered_month(self) -> date | None:
        """First day of the next month whose usage and T&M are still to invoice."""
        if not self._metered():
            return None
        terms = self._s.terms
        month = (add_months(date.fromisoformat(f"{self._s.metered_through}-01"), 1)
                 if self._s.metered_through else terms.start.replace(day=1))  # fmt: skip
        return month if month <= terms.end else None

    async def _invoice_metered(self, today: date) -> None:
        month = self._next_metered_month()
        if month is None or month_end(month) >= today:
            return
        label = period_label(month)
        invoice = await self._activity(ContractActivities.invoice_metered, MeteredInput(
            contract_id=self._s.contract_id, deal=self._s.terms.current, rules=self._s.rules,
            through_period=label, issued_on=today,
            idempotency_key=f"contract:{self._s.contract_id}:metered:{label}"),
            f"invoice usage and approved time through {label}")  # fmt: skip
        self._s.metered_through = label
        if invoice is not None:
            self._invoiced(invoice)
            await self._dispatch(invoice)
        if self._next_period_start() is None:
            self._cycle_done = True

    async def _check_usage_threshold(self, today: date) -> None:
        threshold = self._s.terms.current.usage_invoice_threshold
        if threshold is None or today > self._s.terms.end:
            return
        n = self._s.usage_early_invoices + 1
        invoice = await self._activity(ContractActivities.invoice_metered, MeteredInput(
            contract_id=self._s.contract_id, deal=self._s.terms.current, rules=self._s.rules,
            through_period=period_label(today), issued_on=today, threshold=threshold,
            idempotency_key=f"contract:{self._s.contract_id}:usage-early:{n}"),
            f"invoice usage early if it reached {threshold}")  # fmt: skip
        if invoice is not None:
            self._s.usage_early_invoices = n
            self._invoiced(invoice, f"usage reached the threshold of {threshold}")
            await self._dispatch(invoice)

    async def _deliver(self, delivery: MilestoneDelivered) -> MilestoneResult:
        terms, today = self._s.terms, self._today()
        await self._activity(ContractActivities.record_milestone_delivery, MilestoneInput(
            contract_id=self._s.contract_id, delivery=delivery,
            rules_version=self._s.rules.version), f"record acceptance of {delivery.milestone_id}")  # fmt: skip
        self._s.delivered.append(delivery.milestone_id)
        lines = milestone_invoice_lines(terms.current, delivery.milestone_id)
        event = BillingEvent(invoice_date=today, period_start=delivery.delivered_on,
                             period_end=delivery.accepted_on, lines=lines,
                             reason=f"milestone {delivery.milestone_id} accepted "
                                    f"{delivery.accepted_on}")  # fmt: skip
        invoice = None
        if any(not ln.amount.is_zero() for ln in lines):
            invoice = await self._issue(
                event, f"contract:{self._s.contract_id}:milestone:{delivery.milestone_id}", today
            )
        posted = await workflow.execute_activity_method(
            LedgerActivities.post_recognition,
            PostRecognitionInput(deal_id=self._s.contract_id, currency=terms.currency,
                                 as_of=today, delivered_milestones=self._s.delivered,
                                 rules_version=self._s.rules.version,
                                 occasion=f"milestone:{delivery.milestone_id}"),
            start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
            summary=f"recognise milestone {delivery.milestone_id}",
        )  # fmt: skip
        recognised = Money.zero(terms.currency)
        if posted.entry is not None:
            recognised = Money(amount=sum((ln.credit for ln in posted.entry.lines
                                           if ln.line_id is not None), start=recognised.amount),
                               currency=terms.currency)  # fmt: skip
        self._event("milestone.accepted", f"{delivery.milestone_id} accepted {delivery.accepted_on} "
                    f"by {delivery.accepted_by}; recognised {recognised}",
                    invoice.number if invoice else None)  # fmt: skip
        return MilestoneResult(milestone_id=delivery.milestone_id,
                               invoice_number=invoice.number if invoice else None,
                               invoice_total=invoice.total if invoice else None,
                               recognised=recognised)  # fmt: skip

    async def _approve(self, approval: TimeApproval) -> TimeApprovalResult:
        prices = {ln.line_id: ln.net_price for ln in self._s.terms.current.lines}
        result: TimeApprovalResult = await self._activity(
            ContractActivities.record_time_approval, TimeInput(
            contract_id=self._s.contract_id, currency=self._s.terms.currency, approval=approval,
            unit_prices={e.line_id: prices[e.line_id] for e in approval.entries},
            rules_version=self._s.rules.version), f"record approved time {approval.approval_id}")  # fmt: skip
        self._event("time.approved", f"{approval.approval_id}: {result.entries_recorded} entries "
                    f"by {approval.approved_by}; recognised {result.recognised}")  # fmt: skip
        return result

    async def _amend(self, amendment: Amendment) -> AmendmentResult:
        before, today = self._s.terms, self._today()
        after, treatment = apply_amendment(before, amendment), treatment_of(before, amendment)
        version = self._s.schedule_version + 1
        await self._activity(ContractActivities.record_amendment, AmendmentInput(
            contract_id=self._s.contract_id, amendment=amendment, before=before, after=after,
            delivered=self._s.delivered, schedule_version=version,
            rules_version=self._s.rules.version),
            f"record {amendment.kind.value} {amendment.amendment_id} and schedule v{version}")  # fmt: skip
        self._s.terms, self._s.schedule_version = after, version
        self._s.amendments.append(amendment.amendment_id)
        credit_note = None
        if amendment.kind is AmendmentKind.CANCELLATION:
            credit_note = await self._settle_cancellation(amendment, today)
            workflow.upsert_search_attributes([sa.STAGE.value_set(ContractStatus.CANCELLED.value)])
        self._event("contract.amended", f"{amendment.kind.value} {amendment.amendment_id} from "
                    f"{amendment.effective_date} ({treatment.value}); schedule v{version}",
                    credit_note)  # fmt: skip
        start = self._next_period_start()
        return AmendmentResult(
            amendment_id=amendment.amendment_id, treatment=treatment,
            schedule_version=version, schedule_deadline=_add_weekdays(today, SCHEDULE_DEADLINE_BUSINESS_DAYS),
            billing_from_period=self._s.next_period if start is not None else None,
            credit_note=credit_note,
        )  # fmt: skip

    async def _settle_cancellation(self, amendment: Amendment, today: date) -> str | None:
        event, settled = settlement_note(self._s.terms, self._s.billed, self._s.next_period - 1,
                                         f"cancellation {amendment.amendment_id} from "
                                         f"{amendment.effective_date}")  # fmt: skip
        self._s.billed = settled
        if event is None:
            return None
        invoice = await self._issue(
            event, f"contract:{self._s.contract_id}:cancel:{amendment.amendment_id}", today
        )
        return invoice.number

    async def _issue(self, event: BillingEvent, key: str, today: date) -> Invoice:
        draft = draft_invoice(self._s.terms.current, event, self._s.rules, issued_on=today)
        result = await workflow.execute_activity_method(
            InvoicingActivities.issue_invoice,
            IssueInvoiceInput(draft=draft, idempotency_key=key, rules_version=self._s.rules.version),
            start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
            summary=f"issue {event.reason} ({draft.total})",
        )  # fmt: skip
        self._invoiced(result.invoice)
        await self._dispatch(result.invoice)
        return result.invoice

    def _invoiced(self, invoice: Invoice, why: str | None = None) -> None:
        kind = "credit_note.issued" if invoice.total.amount < 0 else "invoice.issued"
        self._event(kind, f"{invoice.number}: {invoice.total} ({why or invoice.reason})",
                    invoice.number)  # fmt: skip

    async def _dispatch(self, invoice: Invoice) -> None:
        await self._send(invoice.number, str(invoice.total))

    async def _send(self, number: str, total: str) -> None:
        """E-mail the invoice to the billing contact; when that keeps failing, billing gets
        a case."""
        try:
            await workflow.execute_activity_method(
                InvoiceDispatchActivities.dispatch_invoice,
                DispatchInvoiceInput(invoice_number=number, rules_version=self._s.rules.version),
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5),
                                         maximum_attempts=self._s.rules.billing.invoice_dispatch_attempts),
                summary=f"e-mail {number} to the billing contact",
            )  # fmt: skip
        except ActivityError as exc:
            await self._open_dispatch_case(number, total, exc)

    async def _resend(self, request: InvoiceResend) -> InvoiceResendResult:
        """Record the corrected contact (for this and every later invoice), e-mail the
        invoice to it, and close the dispatch case; a refusal fails the update, the case stays."""
        number = request.invoice_number
        resend = self._s.resent.get(number, 0) + 1
        self._s.resent[number] = resend
        current = self._s.terms.current.customer.billing_contact
        contact = Contact(name=request.name or current.name, email=request.email,
                          phone=current.phone if request.name is None else None)  # fmt: skip
        await self._activity(ContractActivities.record_billing_contact, BillingContactInput(
            contract_id=self._s.contract_id, customer_id=self._s.customer_id, contact=contact,
            key=f"{number}:resend-{resend}", requested_by=request.requested_by,
            reason=request.reason, rules_version=self._s.rules.version),
            f"record the corrected billing contact of {self._s.customer_id}")  # fmt: skip
        self._s.terms = self._s.terms.with_billing_contact(contact)
        try:
            sent = await workflow.execute_activity_method(
                InvoiceDispatchActivities.dispatch_invoice,
                DispatchInvoiceInput(invoice_number=number, rules_version=self._s.rules.version,
                                     resend=resend, send_to=contact),
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5),
                                         maximum_attempts=self._s.rules.billing.invoice_dispatch_attempts),
                summary=f"e-mail {number} again, to the corrected billing contact",
            )  # fmt: skip
        except ActivityError as exc:
            self._event("invoice.undelivered", f"{number}: re-send {resend} failed too: "
                        f"{exc.cause or exc}", number)  # fmt: skip
            raise ApplicationError(f"invoice_number: {number} could not be re-sent: "
                                   f"{exc.cause or exc}", type="InvoiceUndeliverable") from None  # fmt: skip
        self._s.undelivered_invoices.remove(number)
        case_id = f"case-contract-{self._s.contract_id}-dispatch-{number}"
        withdrawn: str | None = case_id
        try:
            await workflow.get_external_workflow_handle(case_id).signal(
                ExceptionCaseWorkflow.withdraw,
                f"re-sent to the corrected billing contact by {request.requested_by}",
            )
        except FailureError:  # the case was already resolved (e.g. sent another way)
            withdrawn = None
        self._event("invoice.resent", f"{number}: re-sent to the corrected billing contact "
                    f"({request.reason}; by {request.requested_by})", number)  # fmt: skip
        return InvoiceResendResult(invoice_number=number, resend=resend,
                                   message_id=sent.message_id, case_withdrawn=withdrawn)  # fmt: skip

    async def _open_dispatch_case(self, number: str, total: str, exc: ActivityError) -> None:
        cause = exc.cause or exc
        owner = self._s.rules.owner_of(DISPATCH_CHECK)
        case_id = f"case-contract-{self._s.contract_id}-dispatch-{number}"
        await workflow.start_child_workflow(
            ExceptionCaseWorkflow.run,
            CaseInput(case_id=case_id, subject=f"deal:{self._s.contract_id}", deal=None,
                      check_id=DISPATCH_CHECK, owner_role=owner,
                      messages=[f"{DISPATCH_CHECK}: invoice {number} ({total}) could not be "
                                f"e-mailed: {cause}",
                                "send it to the customer another way, then resolve with approve"],
                      evidence={"invoice": number, "error": str(cause)[:500]},
                      rules_version=self._s.rules.version),
            id=case_id, parent_close_policy=ParentClosePolicy.ABANDON,
            search_attributes=sa.case_attributes(owner.value, DISPATCH_CHECK),
            static_summary=f"invoice {number} not delivered: waiting for {owner.value}",
        )  # fmt: skip
        self._s.undelivered_invoices.append(number)
        self._event("invoice.undelivered", f"{number}: {cause}; case {case_id}", number)

    async def _finish(self) -> ContractOutcome:
        cancelled = self._s.terms.cancelled_on is not None
        status = ContractStatus.CANCELLED if cancelled else ContractStatus.ENDED
        await self._activity(ContractActivities.finish_contract, self._s.contract_id,
                             "record the end of the contract")  # fmt: skip
        workflow.upsert_search_attributes([sa.STAGE.value_set(status.value)])
        return ContractOutcome(contract_id=self._s.contract_id, status=status,
                               periods_billed=self._s.next_period - 1)  # fmt: skip

    # --- dates ----------------------------------------------------------------------------------

    def _today(self) -> date:
        return workflow.now().astimezone(UTC).date()

    def _next_period_start(self) -> date | None:
        terms, n = self._s.terms, self._s.next_period
        if n > len(terms.periods) or not terms.recurring_line_ids():
            return None
        start = terms.periods[n - 1].start
        return start if start <= terms.end else None

    def _next_due(self, today: date) -> date:
        candidates = [self._s.terms.end + ONE_DAY]
        start = self._next_period_start()
        if start is not None:
            candidates.append(today + ONE_DAY if self._on_hold else start)
        month = self._next_metered_month()
        if month is not None:
            candidates.append(month_end(month) + ONE_DAY)
        candidates += [expiry + ONE_DAY for _, expiry in self._s.open_discounts]
        return max(min(candidates), today + ONE_DAY)

    def _until(self, day: date) -> timedelta:
        at = datetime.combine(day, time(0, 5), tzinfo=UTC)
        return max(at - workflow.now(), timedelta(seconds=1))

    def _finished(self, today: date) -> bool:
        terms = self._s.terms
        return (today > terms.end and self._next_period_start() is None
                and self._next_metered_month() is None and not self._s.open_discounts)  # fmt: skip

    def _event(self, kind: str, detail: str, invoice_number: str | None = None) -> None:
        self._s.events.append(ContractEvent(at=workflow.now(), kind=kind, detail=detail,
                                            invoice_number=invoice_number))  # fmt: skip
        del self._s.events[:-MAX_EVENTS]

    async def _activity(self, method: Any, arg: Any, summary: str) -> Any:
        return await workflow.execute_activity_method(
            method, arg, start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
            summary=summary,
        )  # fmt: skip


def _refuse(problems: list[str]) -> None:
    if problems:
        raise ApplicationError("; ".join(problems), type="InvalidContractChange",
                               non_retryable=True)  # fmt: skip


def _add_weekdays(day: date, n: int) -> date:
    while n:
        day += ONE_DAY
        if day.weekday() < 5:
            n -= 1
    return day
