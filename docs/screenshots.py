"""Screenshots of the real Temporal Web UI for docs/approving-from-the-web-ui.md.

    .venv/bin/python -m docs.screenshots                  # writes docs/img/web-ui-*.png
    .venv/bin/python -m docs.screenshots --out /tmp/shots --chromium /usr/bin/chromium

Run it from the project directory. It brings up its own embedded stack (the Temporal dev
server with its Web UI 2.54, PostgreSQL, the worker: `starter.services.running_services`,
without the HTTP API) in a temporary state dir on free ports, submits four deals of the sample
book that each fail one gate, and drives the Web UI in headless Chromium (Debian's
`/usr/bin/chromium`, never a browser Playwright downloads) through what an operator does:

    web-ui-01-open-cases.png          every open case, with owner, check and SLA deadline columns
    web-ui-02-billing-queue.png       the cases waiting on billing
    web-ui-03-case-summary.png        a case: its summary ("... failed on deal ...: waiting for billing")
    web-ui-04-case-search-attributes.png
    web-ui-05-case-state-query.png    Queries tab, `state`: why the case is open
    web-ui-06-send-an-update.png      "Send an Update", `resolve`, the JSON filled in
    web-ui-07-refused.png             a refused update: the validator's reason
    web-ui-08-case-resolved.png       the case completed, its resolution as the result
    web-ui-09-deal-moved-on.png       the deal completed: booked and invoiced with the PO
    web-ui-10-send-a-signal.png       "Send a Signal", `resolve_signal`
    web-ui-11-signal-refusal.png      a refused signal, recorded in the case's `refusals`

Everything stops at the end (also on failure). Takes about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect, sync_playwright
from temporalio.client import Client
from temporalio.service import RPCError

from models.case import CaseState, CaseStatus
from models.deal_flow import DealStage
from starter.intake import Intake
from starter.ports import free_ports
from starter.services import Services, running_services
from starter.settings import PROJECT_ROOT, Settings
from starter.stack import stop_stack
from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from workflows.deal import DealWorkflow
from workflows.exception_case import ExceptionCaseWorkflow

DESCRIPTION = "Screenshots of the real Temporal Web UI for docs/approving-from-the-web-ui.md."
OUT_DIR = PROJECT_ROOT / "docs" / "img"
BOOK = PROJECT_ROOT / "starter" / "sample_data" / "book.json"
VIEWPORT_WIDTH, VIEWPORT_HEIGHT = 1760, 1000
STEP_TIMEOUT_MS = 30_000
WAIT_SECONDS = 60.0

# Deals of the sample book that fail one gate each (starter/sample_data/expected_qa.json).
DEALS = {
    "hs-deal-90424": "structural.po_present",  # no PO, customer requires one: billing
    "hs-deal-90425": "structural.exemption_certificate",  # billing
    "hs-deal-90427": "business.discount_tolerance",  # vp_revops
    "hs-deal-90429": "anomaly.arr_vs_tcv",  # finance
}
RESOLVED_DEAL = "hs-deal-90424"
SIGNALLED_DEAL = "hs-deal-90429"
LIST_COLUMNS_OFF = ("Run ID", "Type", "Start", "End")
LIST_COLUMNS_ON = ("RevopsOwnerRole", "RevopsCheckId", "RevopsSlaDeadline")


def resolution_payload(
    action: str, actor: str, reason_code: str, note: str = "", **fields: Any
) -> dict[str, Any]:
    """The JSON pasted into "Send an Update" / "Send a Signal" (`models.case.Resolution`);
    the one place this script spells it. `actor` is a person id of rules/directory.yaml."""
    return {"action": action, "actor": actor, "reason_code": reason_code, "note": note, **fields}


def amend_with_po() -> dict[str, Any]:
    return resolution_payload(
        "amend",
        "maria.santos",
        "DATA_CORRECTED",
        note="PO received from the customer's procurement team",
        amendments={"po_number": "PB-PO-77120"},
    )


def refused_by_role() -> dict[str, Any]:
    """The same amendment from someone who does not hold billing (sales_ops)."""
    return {**amend_with_po(), "actor": "priya.raman"}


def signal_by_wrong_person() -> dict[str, Any]:
    return resolution_payload(
        "approve", "maria.santos", "CUSTOMER_CONFIRMED", note="ARR confirmed by the customer"
    )


# --- the stack and the deals ----------------------------------------------------------------


def screenshot_settings(state_dir: Path) -> Settings:
    """The embedded pieces on free ports in `state_dir` (nothing of a running stack reused)."""
    temporal_port, ui_port, pg_port, api_port, smtp_port = free_ports(5)
    return Settings(
        state_dir=state_dir,
        temporal_address=None,
        database_url=None,
        temporal_port=temporal_port,
        temporal_ui_port=ui_port,
        postgres_port=pg_port,
        api_port=api_port,
        embedded_smtp_port=smtp_port,
        smtp_host=None,
        task_queue="revops-screenshots",
    )


async def submit_failing_deals(services: Services) -> dict[str, str]:
    """Submit DEALS under their book ids (the state dir is new: nothing is a duplicate);
    book id -> deal id, once each case takes resolutions."""
    book = {deal["deal_id"]: deal for deal in json.loads(BOOK.read_text("utf-8"))}
    intake = Intake(services.pool, services.client, services.rules, services.settings.task_queue)
    ids: dict[str, str] = {}
    for book_id in DEALS:
        deal = book[book_id]
        result = await intake.submit_deal("file", deal, json.dumps(deal), submitted_by="docs")
        if not result.started:
            raise SystemExit(f"{book_id}: {result.message}")
        ids[book_id] = deal["deal_id"]
    for book_id, deal_id in ids.items():
        case_id = case_of(deal_id, DEALS[book_id])
        await wait_for_case(services.client, case_id, lambda c: c.sla_deadline is not None)
    return ids


def case_of(deal_id: str, check_id: str) -> str:
    return f"case-deal-{deal_id}-{check_id}"


async def wait_for_case(
    client: Client, case_id: str, done: Callable[[CaseState], bool]
) -> CaseState:
    handle = client.get_workflow_handle_for(ExceptionCaseWorkflow.run, case_id)
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            state = await handle.query(ExceptionCaseWorkflow.state)
        except RPCError:
            state = None
        if state is not None and done(state):
            return state
        await asyncio.sleep(0.2)
    raise SystemExit(f"{case_id}: not where expected within {WAIT_SECONDS:.0f} s")


async def wait_for_deal_stage(client: Client, deal_id: str, stage: DealStage) -> None:
    handle = client.get_workflow_handle_for(DealWorkflow.run, f"deal-{deal_id}")
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if (await handle.query(DealWorkflow.state)).stage is stage:
            await asyncio.wait_for(handle.result(), WAIT_SECONDS)
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"deal-{deal_id}: not {stage.value} within {WAIT_SECONDS:.0f} s")


# --- the browser ----------------------------------------------------------------------------


@contextmanager
def browser(executable: Path, profile_dir: Path) -> Iterator[Page]:
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile_dir,
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": VIEWPORT_WIDTH, "height": VIEWPORT_HEIGHT},
        )
        try:
            context.set_default_timeout(STEP_TIMEOUT_MS)
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


class WebUi:
    """The Web UI steps of docs/approving-from-the-web-ui.md, with the UI's own selectors."""

    def __init__(self, page: Page, ui_url: str, namespace: str, out: Path) -> None:
        self.page = page
        self.base = f"{ui_url}/namespaces/{namespace}/workflows"
        self.out = out

    def shot(self, name: str) -> None:
        self.page.wait_for_timeout(400)  # let transitions settle
        path = self.out / f"web-ui-{name}.png"
        self.page.screenshot(path=path)
        print(f"  {path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path}")

    def configure_columns(self) -> None:
        """Configure Columns (stored in the browser): owner, check and SLA instead of ids."""
        self.page.goto(self.base)
        self.page.get_by_test_id("workflows-summary-table-configuration-button").click()
        for name in LIST_COLUMNS_OFF:
            self.page.get_by_role("button", name=f"Remove {name} column").click()
        for name in LIST_COLUMNS_ON:
            self.page.get_by_role("button", name=f"Add {name} column").click()
        self.page.get_by_test_id("drawer-close-button").click()

    def search(self, query: str, expect_rows: int) -> None:
        self.page.goto(self.base)
        self.page.get_by_test_id("toggle-manual-query").click()
        box = self.page.get_by_test_id("workflow-manual-search-input")
        box.fill(query)
        box.press("Enter")
        expect(self.page.locator("tbody tr")).to_have_count(expect_rows)
        expect(self.page.locator("tbody tr").first).to_contain_text(re.compile("running", re.I))

    def open(self, workflow_id: str) -> None:
        self.page.goto(f"{self.base}/{workflow_id}")
        expect(self.more_actions).to_be_visible()

    @property
    def more_actions(self) -> Locator:
        return self.page.get_by_role("button", name="More Actions")

    def tab(self, test_id: str) -> None:
        self.page.get_by_test_id(test_id).click()

    def run_state_query(self) -> None:
        self.tab("queries-tab")
        self.page.get_by_role("button", name="Run Query").click()
        result = self.page.get_by_test_id("query-result")
        expect(result).to_contain_text('"case_id"')

    def dialog(self, kind: str, handler: str, payload: dict[str, Any]) -> Locator:
        """More Actions → Send an Update / Send a Signal → handler → Data; the open dialog."""
        self.more_actions.click()
        self.page.locator(f"[data-testid={kind}-button]:visible").click()
        dialog = self.page.locator(f"dialog[open][data-testid={kind}-confirmation-modal]")
        dialog.get_by_test_id(f"{kind}-select-button").click()
        dialog.get_by_role("option", name=handler, exact=True).click()
        dialog.get_by_role("textbox", name="Data").fill(json.dumps(payload, indent=2))
        dialog.get_by_role("textbox", name="Data").blur()
        return dialog


def first_part(ui: WebUi, ids: dict[str, str]) -> None:
    """Find, read, get refused, send the update."""
    case_id = case_of(ids[RESOLVED_DEAL], DEALS[RESOLVED_DEAL])
    ui.configure_columns()
    ui.search('WorkflowType = "ExceptionCaseWorkflow" AND RevopsCaseStatus = "open"', len(DEALS))
    ui.shot("01-open-cases")
    ui.search('RevopsOwnerRole = "billing" AND RevopsCaseStatus = "open"', 2)
    ui.shot("02-billing-queue")
    ui.open(case_id)
    ui.tab("user-metadata-tab")
    summary = ui.page.frame_locator("iframe").first  # the summary is rendered as markdown
    expect(summary.get_by_text("waiting for billing")).to_be_visible()
    ui.shot("03-case-summary")
    ui.tab("search-attributes-tab")
    expect(ui.page.get_by_text('"RevopsCaseStatus"')).to_be_visible()
    ui.shot("04-case-search-attributes")
    ui.run_state_query()
    ui.shot("05-case-state-query")

    refused = ui.dialog("update", "resolve", refused_by_role())
    refused.get_by_role("button", name="Submit").click()
    expect(refused.get_by_role("alert").filter(has=ui.page.locator("p"))).to_be_visible()
    ui.shot("07-refused")
    refused.get_by_role("button", name="Cancel").last.click()
    expect(refused).to_be_hidden()

    update = ui.dialog("update", "resolve", amend_with_po())
    ui.shot("06-send-an-update")
    update.get_by_role("button", name="Submit").click()
    expect(update).to_be_hidden()
    expect(ui.page.get_by_test_id("toast-live-region-polite")).to_contain_text("Update successful")


def second_part(ui: WebUi, ids: dict[str, str]) -> None:
    """The resolved case, the deal moving on, and the signal path."""
    deal_id = ids[RESOLVED_DEAL]
    ui.open(case_of(deal_id, DEALS[RESOLVED_DEAL]))
    expect(ui.page.get_by_text(re.compile("^completed$", re.I)).first).to_be_visible()
    ui.page.get_by_text('"resolution"').first.wait_for()
    ui.shot("08-case-resolved")
    ui.open(f"deal-{deal_id}")
    expect(ui.page.get_by_text(re.compile("^completed$", re.I)).first).to_be_visible()
    ui.page.get_by_text('"invoice_number"').first.wait_for()
    ui.shot("09-deal-moved-on")

    ui.open(case_of(ids[SIGNALLED_DEAL], DEALS[SIGNALLED_DEAL]))
    signal = ui.dialog("signal", "resolve_signal", signal_by_wrong_person())
    ui.shot("10-send-a-signal")
    signal.get_by_role("button", name="Submit").click()
    expect(signal).to_be_hidden()


def third_part(ui: WebUi, ids: dict[str, str]) -> None:
    ui.open(case_of(ids[SIGNALLED_DEAL], DEALS[SIGNALLED_DEAL]))
    ui.run_state_query()
    result = ui.page.get_by_test_id("query-result")
    expect(result).to_contain_text("does not hold finance")
    result.get_by_text('"refusals"').scroll_into_view_if_needed()
    ui.shot("11-signal-refusal")


async def capture(chromium: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="revops-docs-", ignore_cleanup_errors=True) as tmp:
        settings = screenshot_settings(Path(tmp) / "state")
        try:
            print("starting the stack (Temporal dev server and Web UI, PostgreSQL, worker)")
            async with running_services(settings, with_api=False) as services:
                print(f"Temporal Web UI  {services.ui_url}")
                ids = await submit_failing_deals(services)
                profile = Path(tmp) / "chromium-profile"
                namespace = services.settings.temporal_namespace

                def in_browser(part: Callable[[WebUi, dict[str, str]], None]) -> None:
                    with browser(chromium, profile) as page:
                        part(WebUi(page, services.ui_url, namespace, out), ids)

                await asyncio.to_thread(in_browser, first_part)
                resolved = case_of(ids[RESOLVED_DEAL], DEALS[RESOLVED_DEAL])
                await wait_for_case(
                    services.client, resolved, lambda c: c.status is CaseStatus.RESOLVED
                )
                await wait_for_deal_stage(services.client, ids[RESOLVED_DEAL], DealStage.COMPLETED)
                await asyncio.to_thread(in_browser, second_part)
                signalled = case_of(ids[SIGNALLED_DEAL], DEALS[SIGNALLED_DEAL])
                await wait_for_case(services.client, signalled, lambda c: bool(c.refusals))
                await asyncio.to_thread(in_browser, third_part)
        finally:
            await asyncio.to_thread(stop_stack, settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docs.screenshots", description=DESCRIPTION)
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"where the PNGs go ({OUT_DIR})")
    parser.add_argument("--chromium", type=Path, default=CHROMIUM, help=f"the browser ({CHROMIUM})")
    args = parser.parse_args(argv)
    if not args.chromium.is_file():
        print(f"{args.chromium} is absent: apt-get install -y chromium", file=sys.stderr)
        return 2
    asyncio.run(capture(args.chromium, args.out.resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
