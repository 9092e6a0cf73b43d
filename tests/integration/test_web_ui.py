"""The real Temporal Web UI (2.54, served by the session's dev server), driven as an operator
drives it: find the open case with a search-attribute query, open it, read why in the Queries
tab, and resolve it with "Send an Update".

The browser is Debian's Chromium (`/usr/bin/chromium`, `apt-get install chromium`), never one
Playwright downloads; the test is skipped only when it is absent (`.ci/run` installs it).
Playwright's sync API runs in a thread: the worker of the session runs on this event loop,
so the loop must stay free while the browser waits on the workflow.

The deal is hs-deal-90424 of the sample book under a fresh id: Permian Basin Energy Services
requires a PO and the deal has none, so `structural.po_present` fails and a case owned by
billing opens, `case-deal-<deal id>-structural.po_present`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright
from temporalio.client import Client

from models.case import CaseStatus, ResolutionAction
from models.deal_flow import DealStage
from starter.services import Services
from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.integration.helpers import (
    WAIT_SECONDS,
    book_deal,
    case_state,
    open_case,
    unique_deal_id,
    wait_for_case,
    wait_for_outcome,
    wait_for_state,
)

pytestmark = pytest.mark.integration

STEP_TIMEOUT_MS = 30_000  # one click, one page, one answer of the UI
BROWSER_SECONDS = 240.0  # the whole browser part of one test

T = TypeVar("T")

NO_PO = "hs-deal-90424"
CHECK = "structural.po_present"
BILLING_PERSON = "maria.santos"  # holds billing in rules/directory.yaml


def resolution_payload(
    action: str, reason_code: str, note: str = "", **fields: Any
) -> dict[str, Any]:
    """The JSON an operator pastes into "Send an Update" `resolve` (`models.case.Resolution`).

    The one place this module spells the payload: the actor is a person id of the role
    directory (their roles come from there, not from the payload)."""
    return {
        "action": action,
        "actor": BILLING_PERSON,
        "reason_code": reason_code,
        "note": note,
        **fields,
    }


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium (Debian's browser)")
    return CHROMIUM


# --- the case -------------------------------------------------------------------------------


async def open_po_case(services: Services) -> tuple[str, str]:
    """A deal without its required PO; (deal workflow id, case id) once the case takes
    resolutions and the visibility store (what the Web UI lists from) lists it as open."""
    workflow_id, case_id = await open_case(
        services, book_deal(NO_PO, unique_deal_id()), CHECK, "it-web-ui"
    )
    await wait_for_listing(
        services.client, f'WorkflowId = "{case_id}" AND RevopsCaseStatus = "open"'
    )
    return workflow_id, case_id


async def wait_for_listing(client: Client, query: str, timeout: float = WAIT_SECONDS) -> None:
    """Until the visibility store (what the Web UI lists from) answers `query` with a row."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if [wf.id async for wf in client.list_workflows(query)]:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"nothing listed for {query!r} within {timeout:.0f} s")


# --- the browser ----------------------------------------------------------------------------


@contextmanager
def browser_page(executable: Path, profile_dir: Path) -> Iterator[Page]:
    """A page of a fresh headless Chromium; closed whatever happens. On a failure the page
    is saved as `failure.png` beside the profile."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile_dir,
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1600, "height": 1000},
        )
        try:
            context.set_default_timeout(STEP_TIMEOUT_MS)
            page = context.pages[0] if context.pages else context.new_page()
            try:
                yield page
            except BaseException:
                page.screenshot(path=profile_dir.parent / "failure.png")
                raise
        finally:
            context.close()


class CaseInTheWebUi:
    """What an operator does in the Web UI, one method per step, with the UI's own selectors."""

    def __init__(self, page: Page, ui_url: str, namespace: str) -> None:
        self.page = page
        self.workflows_url = f"{ui_url}/namespaces/{namespace}/workflows"

    def search(self, query: str) -> None:
        """Workflows list → `</>` (raw query) → paste the query → Enter."""
        self.page.goto(self.workflows_url)
        self.page.get_by_test_id("toggle-manual-query").click()
        box = self.page.get_by_test_id("workflow-manual-search-input")
        box.fill(query)
        box.press("Enter")

    def listed(self, workflow_id: str) -> Locator:
        return self.page.get_by_role("link", name=workflow_id, exact=True)

    def open(self, workflow_id: str) -> None:
        self.listed(workflow_id).click()
        self.page.wait_for_url(f"**/workflows/{workflow_id}/**")
        expect(self.more_actions).to_be_visible()

    @property
    def more_actions(self) -> Locator:
        return self.page.get_by_role("button", name="More Actions")

    def query_state(self) -> str:
        """Queries tab → `state` (the only query, preselected) → Run Query; the JSON shown."""
        self.page.get_by_test_id("queries-tab").click()
        self.page.get_by_role("button", name="Run Query").click()
        result = self.page.get_by_test_id("query-result").get_by_role(
            "textbox", name="Query Result"
        )
        expect(result).to_contain_text('"case_id"', timeout=STEP_TIMEOUT_MS)
        return result.inner_text()

    def send_update(self, name: str, payload: dict[str, Any]) -> str | None:
        """More Actions → Send an Update → Name → Data (JSON) → Submit. None when the UI
        reports success; else the reason of the error the dialog shows."""
        self.more_actions.click()
        # The page renders the actions menu twice (wide and narrow layout): take the visible one.
        self.page.locator("[data-testid=update-button]:visible").click()
        dialog = self.page.locator("dialog[open][data-testid=update-confirmation-modal]")
        dialog.get_by_test_id("update-select-button").click()
        dialog.get_by_role("option", name=name, exact=True).click()
        dialog.get_by_role("textbox", name="Data").fill(json.dumps(payload, indent=2))
        dialog.get_by_role("button", name="Submit").click()
        # A refusal: an error alert under the Data field, the reason first, then the stack.
        error = dialog.get_by_role("alert").filter(has=self.page.locator("p"))
        deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            if not dialog.is_visible():
                expect(self.page.get_by_test_id("toast-live-region-polite")).to_contain_text(
                    "Update successful"
                )
                return None
            if error.is_visible():
                return error.locator("p").first.inner_text()
            self.page.wait_for_timeout(100)
        raise AssertionError("the Send an Update dialog neither closed nor showed an error")


async def in_browser(
    services: Services, chromium: Path, tmp_path: Path, steps: Callable[[CaseInTheWebUi], T]
) -> T:
    """Run `steps` against the session's Web UI in a thread, bounded in time."""

    def run() -> T:
        with browser_page(chromium, tmp_path / "chromium-profile") as page:
            ui = CaseInTheWebUi(page, services.ui_url, services.settings.temporal_namespace)
            return steps(ui)

    return await asyncio.wait_for(asyncio.to_thread(run), BROWSER_SECONDS)


# --- the tests ------------------------------------------------------------------------------


async def test_an_operator_finds_the_open_case_reads_why_and_resolves_it_with_an_update(
    services: Services, chromium: Path, tmp_path: Path
) -> None:
    workflow_id, case_id = await open_po_case(services)
    payload = resolution_payload(
        "amend",
        "DATA_CORRECTED",
        note="PO received from the customer's procurement team",
        amendments={"po_number": "PB-PO-88214"},
    )

    def operator(ui: CaseInTheWebUi) -> tuple[list[str], str, str | None]:
        ui.search(f'RevopsCaseStatus = "open" AND WorkflowId = "{case_id}"')
        expect(ui.listed(case_id)).to_be_visible()
        rows = ui.page.locator("tbody tr").all_inner_texts()
        ui.open(case_id)
        why = ui.query_state()
        return rows, why, ui.send_update("resolve", payload)

    rows, why, refused = await in_browser(services, chromium, tmp_path, operator)

    assert [row for row in rows if case_id in row], rows
    assert all("Running" in row or "RUNNING" in row for row in rows if case_id in row)
    shown = json.loads(why)  # the Queries tab shows the `state` query's JSON
    assert (shown["case_id"], shown["status"], shown["owner_role"]) == (case_id, "open", "billing")
    assert any("requires a PO" in message for message in shown["messages"])
    assert refused is None

    state = await wait_for_case(services.client, case_id, lambda c: c.status is not CaseStatus.OPEN)
    assert state.status is CaseStatus.RESOLVED
    resolution = state.resolution
    assert resolution is not None
    assert (resolution.action, resolution.actor, resolution.reason_code) == (
        ResolutionAction.AMEND,
        BILLING_PERSON,
        "DATA_CORRECTED",
    )
    assert resolution.amendments == {"po_number": "PB-PO-88214"}
    outcome = await wait_for_outcome(services.client, workflow_id)
    assert outcome.stage is DealStage.COMPLETED
    deal = await wait_for_state(services.client, workflow_id, lambda s: True)
    assert deal.invoice is not None and deal.invoice.po_number == "PB-PO-88214"
    assert [(r.case_id, r.status) for r in deal.resolutions] == [(case_id, CaseStatus.RESOLVED)]


async def test_a_refused_update_shows_the_validators_reason_and_the_case_stays_open(
    services: Services, chromium: Path, tmp_path: Path
) -> None:
    workflow_id, case_id = await open_po_case(services)
    payload = resolution_payload(
        "amend", "BECAUSE_I_SAY_SO", note="no reason code", amendments={"po_number": "PO-1"}
    )

    def operator(ui: CaseInTheWebUi) -> str | None:
        ui.search(
            f'RevopsOwnerRole = "billing" AND RevopsCaseStatus = "open" AND WorkflowId = "{case_id}"'
        )
        ui.open(case_id)
        return ui.send_update("resolve", payload)

    refused = await in_browser(services, chromium, tmp_path, operator)

    assert refused is not None, "the UI reported success for a payload the validator refuses"
    codes = ", ".join(sorted(services.rules.reason_codes))
    assert refused == f"reason_code 'BECAUSE_I_SAY_SO' is not one of: {codes}"
    state = await case_state(services.client, case_id)
    assert (state.status, state.resolution) == (CaseStatus.OPEN, None)
    deal = await wait_for_state(services.client, workflow_id, lambda s: True)
    assert deal.stage is DealStage.AWAITING_RESOLUTION
    assert [c.case_id for c in deal.open_cases] == [case_id]
