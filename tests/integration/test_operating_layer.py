"""The operating layer on the real dev server and PostgreSQL: a case's owner is e-mailed over
real SMTP (the embedded mailbox), `revops cases` lists it, `revops case resolve` applies the
directory's role rules, and `revops rules replay` reports what a changed rule set would route
differently, without touching anything live."""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.records import BookContractInput, RecordsActivities
from models.deal import DealSubmission
from models.deal_flow import DealStage
from starter.services import Services
from starter.settings import PROJECT_ROOT
from tests.integration.helpers import book_deal, open_case, unique_deal_id, wait_for_outcome
from tests.integration.test_cli_submit import revops

pytestmark = pytest.mark.integration

CHECK = "structural.po_present"


async def deal_waiting_on_billing(services: Services) -> tuple[str, str]:
    """hs-deal-90401 without its PO: billing owns the case (maria.santos, oliver.grant)."""
    deal_id = unique_deal_id()
    deal = {**book_deal("hs-deal-90401", deal_id), "po_number": None}
    _, case_id = await open_case(services, deal, CHECK, "it")
    return deal_id, case_id


async def test_the_owner_is_mailed_listed_and_only_the_owning_role_resolves(
    services: Services,
) -> None:
    deal_id, case_id = await deal_waiting_on_billing(services)

    # E-mail over real SMTP to both people holding billing.
    assert services.mailbox is not None, "the embedded mailbox runs when SMTP_HOST is unset"
    mails = []
    for _ in range(100):
        # Case notices are plain text; invoices (multipart, with their PDF) are skipped.
        mails = [m for m in services.mailbox.messages()
                 if not m.is_multipart() and case_id in m.get_content()]  # fmt: skip
        if mails:
            break
        await asyncio.sleep(0.1)
    [mail] = mails
    assert (
        mail["To"]
        == "Maria Santos <maria.santos@ledgerline.example>, Oliver Grant <oliver.grant@ledgerline.example>"
    )
    assert mail["Subject"].startswith(f"[revops] {CHECK} failed on deal:{deal_id}: yours by ")
    assert "(Asia/Kolkata)" in mail["Subject"]  # billing works on the india calendar
    assert f"revops case resolve {case_id}" in mail.get_content()

    listed = await revops(services, "cases", "--role", "billing")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    row = next(line for line in listed.stdout.splitlines() if case_id in line)
    assert f"deal:{deal_id}" in row and CHECK in row and "billing" in row

    refused = await revops(services, "case", "resolve", case_id, "--action", "amend",
                           "--as", "priya.raman", "--reason", "DATA_CORRECTED",
                           "--amend", '{"po_number": "4500191100"}')  # fmt: skip
    assert refused.returncode == 1
    assert (
        f"refused: priya.raman (sales_ops) does not hold billing, which owns case {case_id} at level 0"
        in " ".join(refused.stdout.split())
    )
    audited = await services.pool.fetch(
        "SELECT actor, subject, reason_code, rules_version FROM audit_event "
        "WHERE action = 'case.refused' AND after->>'case_id' = $1",
        case_id,
    )
    assert [dict(r) for r in audited] == [{
        "actor": "priya.raman", "subject": f"deal:{deal_id}", "reason_code": "DATA_CORRECTED",
        "rules_version": services.rules.version,
    }]  # fmt: skip

    resolved = await revops(services, "case", "resolve", case_id, "--action", "amend",
                            "--as", "maria.santos", "--reason", "DATA_CORRECTED",
                            "--note", "PO from procurement", "--amend", '{"po_number": "4500191100"}')  # fmt: skip
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    outcome = await wait_for_outcome(services.client, f"deal-{deal_id}")
    assert outcome.stage is DealStage.COMPLETED
    row_after = await services.pool.fetchrow(
        "SELECT status, resolution->>'actor' AS actor, resolution->>'reason_code' AS reason "
        "FROM exception_case WHERE case_id = $1",
        case_id,
    )
    assert row_after is not None
    assert dict(row_after) == {
        "status": "resolved",
        "actor": "maria.santos",
        "reason": "DATA_CORRECTED",
    }


async def test_rules_replay_reports_rerouted_and_newly_failing_events(
    services: Services, tmp_path: Path
) -> None:
    deal_id, _case_id = await deal_waiting_on_billing(services)
    changed = tmp_path / "rules"
    shutil.copytree(PROJECT_ROOT / "rules", changed)
    routes = changed / "routes.yaml"
    routes.write_text(routes.read_text().replace(
        "structural.po_present:            {owner_role: billing, sla_business_hours: 16, escalation: billing}",
        "structural.po_present:            {owner_role: finance, sla_business_hours: 8, escalation: finance}",
    ))  # fmt: skip
    qa = changed / "qa.yaml"
    qa.write_text(qa.read_text().replace("max_discount_percent: 30", "max_discount_percent: 5"))
    before = await services.pool.fetchval("SELECT count(*) FROM exception_case")

    replayed = await revops(services, "rules", "replay", "--rules", str(changed))

    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    out = " ".join(replayed.stdout.split())
    assert f"{deal_id} (run 1, recorded under {services.rules.version})" in out
    assert (
        f"re-routed {CHECK}: billing (16h) → finance (8h) → vp_finance (16h) ⇒ "
        "finance (8h) → vp_finance (16h) → cfo (24h)"
    ) in out
    assert "now fails business.discount_tolerance: to vp_revops (16h) → cro (16h)" in out
    # Nothing live changed: no case opened or moved.
    assert await services.pool.fetchval("SELECT count(*) FROM exception_case") == before


async def test_booking_a_contract_again_with_other_terms_is_refused_and_writes_nothing(
    services: Services,
) -> None:
    records = RecordsActivities(services.pool)
    deal_id = unique_deal_id()
    first = DealSubmission.model_validate(book_deal("hs-deal-90401", deal_id))
    env = ActivityEnvironment()
    await env.run(records.book_contract, BookContractInput(deal=first, usd_rate=Decimal(1),
                                                           rules_version=services.rules.version))  # fmt: skip
    again = first.model_copy(update={"end_date": first.end_date + timedelta(days=365)})

    with pytest.raises(ApplicationError) as refused:
        await env.run(records.book_contract, BookContractInput(deal=again, usd_rate=Decimal(1),
                                                               rules_version=services.rules.version))  # fmt: skip

    assert refused.value.type == "DataMismatch" and refused.value.non_retryable
    assert refused.value.message == (
        f"contract {deal_id} is already booked with other terms: "
        f"end_date booked {first.end_date}, now {again.end_date}"
    )
    stored = await services.pool.fetchval(
        "SELECT end_date FROM contract WHERE deal_id = $1", deal_id
    )
    assert stored == first.end_date
    assert (
        await services.pool.fetchval(
            "SELECT count(*) FROM audit_event WHERE subject = $1 AND action = 'contract.booked'",
            f"deal:{deal_id}",
        )
        == 1
    )
