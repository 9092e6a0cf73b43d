"""The life of one override after it is granted (`signoff-<case id>`), started by the case
workflow and outliving it (parent close policy ABANDON), so the deal goes on meanwhile.

Runbook: record the override (expiry, sign-off due) → ask the sign-off role for a
retrospective QA sign-off → if none comes within one business week, raise the audit flag
(audit event, case row, search attribute, notice) → accept a sign-off at any time until
expiry, a late one included → on the expiry date, record that the override expired.

Updates: `sign_off` (validated: the sign-off role, neither requester nor approver, a reason
code). Signals: `sign_off_signal` (same rules; refusals recorded). Queries: `state`.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.cases import CaseActivities, OverrideEventInput
    from models.case import OverrideInput, OverrideState, Refusal, SignOff, signoff_problems
    from models.notices import override_flagged, signoff_requested
    from workflows import STEP_RETRY, STEP_TIMEOUT
    from workflows import search_attributes as sa
    from workflows.notifying import notify


@workflow.defn
class OverrideSignoffWorkflow:
    @workflow.init
    def __init__(self, data: OverrideInput) -> None:
        self._input = data
        self._state = OverrideState(
            case_id=data.case_id, requester=data.requester, approver=data.approver,
            expires_on=data.expires_on, signoff_due=data.signoff_due,
        )  # fmt: skip
        self._signoff_recorded = False

    @workflow.run
    async def run(self, data: OverrideInput) -> OverrideState:
        await self._record("granted", actor=data.requester, reason_code=data.reason_code,
                           expires_on=data.expires_on, signoff_due=data.signoff_due,
                           detail={"approver": data.approver, "check_id": data.check_id})  # fmt: skip
        problem = await notify(
            f"signoff-{data.case_id}:{workflow.info().run_id}:requested", data.subject,
            data.signoff_people, signoff_requested(self._state, data.check_id, data.signoff_calendar),
        )  # fmt: skip
        if problem:
            workflow.logger.warning("sign-off request not delivered: %s", problem)
        if not await self._signed_by(data.signoff_due, "sign-off due (one business week)"):
            await self._flag()
            expiry = datetime.combine(data.expires_on, time.min, tzinfo=UTC)
            await self._signed_by(expiry, f"override in force until {data.expires_on}")
        expiry = datetime.combine(data.expires_on, time.min, tzinfo=UTC)
        if workflow.now() < expiry:
            await workflow.sleep(
                expiry - workflow.now(), summary=f"override expires {data.expires_on}"
            )
        self._state.expired = True
        await self._record("expired")
        return self._state

    async def _signed_by(self, at: datetime, what: str) -> bool:
        """Wait until signed off or `at`; True when signed off (recorded once)."""
        if self._state.signed_off is None and workflow.now() < at:
            try:
                await workflow.wait_condition(
                    lambda: self._state.signed_off is not None,
                    timeout=at - workflow.now(), timeout_summary=what,
                )  # fmt: skip
            except TimeoutError:
                return False
        signoff = self._state.signed_off
        if signoff is not None and not self._signoff_recorded:
            self._signoff_recorded = True
            await self._record("signed_off", actor=signoff.actor, reason_code=signoff.reason_code,
                               signed_off_by=signoff.actor, signed_off_at=self._state.signed_off_at,
                               detail={"note": signoff.note, "late": self._state.audit_flagged})  # fmt: skip
        return signoff is not None

    @workflow.query
    def state(self) -> OverrideState:
        return self._state

    @workflow.update
    def sign_off(self, signoff: SignOff) -> OverrideState:
        self._accept(signoff)
        return self._state

    def _accept(self, signoff: SignOff) -> None:
        self._state.signed_off = signoff
        self._state.signed_off_at = workflow.now()

    @sign_off.validator
    def _validate_sign_off(self, signoff: SignOff) -> None:
        problems = signoff_problems(self._state, self._input, signoff)
        if problems:
            raise ValueError("; ".join(problems))

    @workflow.signal
    def sign_off_signal(self, signoff: SignOff) -> None:
        problems = signoff_problems(self._state, self._input, signoff)
        if problems:
            self._state.refusals.append(
                Refusal(at=workflow.now(), actor=signoff.actor, action="sign_off", why=problems)
            )
            return
        self._accept(signoff)

    async def _flag(self) -> None:
        self._state.audit_flagged = True
        workflow.upsert_search_attributes([sa.AUDIT_FLAGGED.value_set(True)])
        await self._record("audit_flagged", audit_flagged=True,
                           detail={"signoff_due": self._input.signoff_due.isoformat()})  # fmt: skip
        await notify(
            f"signoff-{self._input.case_id}:{workflow.info().run_id}:flagged", self._input.subject,
            self._input.signoff_people, override_flagged(self._state, self._input.check_id),
        )  # fmt: skip

    async def _record(self, event: str, actor: str = "system", reason_code: str | None = None,
                      **fields: object) -> None:  # fmt: skip
        await workflow.execute_activity_method(
            CaseActivities.record_override_event,
            OverrideEventInput.model_validate({
                "case_id": self._input.case_id, "subject": self._input.subject, "event": event,
                "actor": actor, "reason_code": reason_code,
                "rules_version": self._input.rules_version, **fields,
            }),
            start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
            summary=f"record override {event}",
        )  # fmt: skip
