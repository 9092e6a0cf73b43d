"""Shared by the integration tests: book deals under fresh ids, and bounded waits on workflows."""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from models.case import CaseState
from models.deal_flow import DealOutcome, DealStage, DealState
from starter.intake import Intake
from starter.services import Services
from starter.settings import Settings
from workflows.deal import DealWorkflow
from workflows.exception_case import ExceptionCaseWorkflow

BOOK = Path(__file__).resolve().parents[2] / "starter" / "sample_data" / "book.json"
WAIT_SECONDS = 60.0


@cache
def _book() -> dict[str, dict[str, Any]]:
    deals: list[dict[str, Any]] = json.loads(BOOK.read_text())
    return {deal["deal_id"]: deal for deal in deals}


def book_deal(book_id: str, deal_id: str, customer_id: str | None = None) -> dict[str, Any]:
    """A deal of the sample book as JSON, under a new deal id (and a new customer, so that
    each test's deal is a first order whatever the session booked before)."""
    deal = copy.deepcopy(_book()[book_id])
    deal["deal_id"] = deal_id
    deal["customer"]["customer_id"] = customer_id or f"it-co-{uuid.uuid4().hex[:12]}"
    return deal


def unique_deal_id() -> str:
    return f"it-deal-{uuid.uuid4().hex[:12]}"


def unique_numeric_id() -> str:
    """A HubSpot-style record id (digits only), unique for the session."""
    return str(10**11 + uuid.uuid4().int % 10**11)


async def wait_for_state(
    client: Client,
    workflow_id: str,
    done: Callable[[DealState], bool],
    timeout: float = WAIT_SECONDS,
) -> DealState:
    """Poll the deal's `state` query until `done(state)`; fail after `timeout` seconds."""
    handle = client.get_workflow_handle_for(DealWorkflow.run, workflow_id)
    deadline = time.monotonic() + timeout
    last: DealState | None = None
    while time.monotonic() < deadline:
        try:
            last = await handle.query(DealWorkflow.state)
        except RPCError:
            last = None  # not started (or not yet queryable)
        if last is not None and done(last):
            return last
        await asyncio.sleep(0.2)
    stage = last.stage.value if last else "no state"
    raise AssertionError(f"{workflow_id}: condition not met within {timeout:.0f} s (stage {stage})")


async def wait_for_outcome(
    client: Client, workflow_id: str, timeout: float = WAIT_SECONDS
) -> DealOutcome:
    """The deal workflow's result, within `timeout` seconds."""
    handle = client.get_workflow_handle_for(DealWorkflow.run, workflow_id)
    return await asyncio.wait_for(handle.result(), timeout)


async def workflow_runs(client: Client, workflow_id: str) -> list[WorkflowExecutionStatus | None]:
    """Status of every run of `workflow_id`, as the visibility store lists them."""
    return [wf.status async for wf in client.list_workflows(f"WorkflowId = '{workflow_id}'")]


async def workflow_exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return False
    return True


async def case_state(client: Client, case_id: str) -> CaseState:
    return await client.get_workflow_handle_for(ExceptionCaseWorkflow.run, case_id).query(
        ExceptionCaseWorkflow.state
    )


async def wait_for_case(
    client: Client, case_id: str, done: Callable[[CaseState], bool], timeout: float = WAIT_SECONDS
) -> CaseState:
    """Query the case until `done` holds (it may not have started yet)."""
    deadline = time.monotonic() + timeout
    last: CaseState | None = None
    while time.monotonic() < deadline:
        try:
            last = await case_state(client, case_id)
        except RPCError:
            last = None  # not started yet
        if last is not None and done(last):
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"{case_id}: condition not met within {timeout:.0f} s (state {last})")


async def open_case(
    services: Services, deal: dict[str, Any], check_id: str, submitted_by: str
) -> tuple[str, str]:
    """Submit `deal` (built to fail `check_id`) through the intake; (deal workflow id, case
    id) once the case has read its routing and started its SLA clock, i.e. takes resolutions."""
    intake = Intake(services.pool, services.client, services.rules, services.settings.task_queue)
    submitted = await intake.submit_deal("file", deal, json.dumps(deal), submitted_by=submitted_by)
    assert submitted.started, submitted.message
    deal_id = deal["deal_id"]
    workflow_id, case_id = f"deal-{deal_id}", f"case-deal-{deal_id}-{check_id}"
    await wait_for_state(
        services.client, workflow_id,
        lambda s: s.stage is DealStage.AWAITING_RESOLUTION and bool(s.open_cases),
    )  # fmt: skip
    await wait_for_case(services.client, case_id, lambda c: c.sla_deadline is not None)
    return workflow_id, case_id


@asynccontextmanager
async def scratch_database(
    services: Services, stack_settings: Settings, prefix: str
) -> AsyncIterator[str]:
    """The URL of a new, empty database on the session's server, owned by the application's
    login role and dropped at the end. Skips the test where the server refuses to create one
    (a production server whose login role may not)."""
    parts = urlsplit(services.settings.effective_database_url)
    owner = parts.username or "revops"
    if stack_settings.embedded_database:  # the cluster's superuser may create databases
        admin_url = urlunsplit(parts._replace(netloc=f"postgres@{parts.netloc.split('@')[-1]}",
                                              path="/postgres"))  # fmt: skip
    else:
        admin_url = urlunsplit(parts)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute("SET ROLE NONE")  # the login role itself, not the application role
    try:
        try:
            await admin.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        except asyncpg.InsufficientPrivilegeError as exc:
            pytest.skip(f"cannot create a scratch database on this server: {exc}")
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
