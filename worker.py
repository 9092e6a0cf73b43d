"""The worker: every workflow and activity of the product on one task queue.

`python worker.py` (or `revops worker`) runs it against the settings' Temporal and
PostgreSQL; `revops up` runs it inside the embedded stack.
"""

from __future__ import annotations

import asyncio
import compileall
import dataclasses
import logging
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import structlog
from temporalio.client import Client, GrpcCompression
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workflows
from activities.cases import CaseActivities
from activities.close import CloseActivities
from activities.contracts import ContractActivities
from activities.crm import CrmActivities, HubSpotCrm
from activities.db import create_pool
from activities.invoice_dispatch import InvoiceDispatchActivities
from activities.invoicing import InvoicingActivities
from activities.ledger import LedgerActivities
from activities.notifications import NotificationActivities, SmtpSettings
from activities.records import RecordsActivities
from activities.smtp_send import close_smtp_sessions
from starter import event_loop
from starter.close_commands import ensure_close_schedule
from starter.embedded_mail import smtp_settings
from starter.embedded_temporal import ensure_search_attributes
from starter.gc_tuning import worker_gc
from starter.rules_loader import load_rule_book
from starter.rules_store import store_rule_book
from starter.settings import Settings, get_settings
from workflows.contract import ContractWorkflow
from workflows.deal import DealWorkflow
from workflows.escalation import EscalationWorkflow
from workflows.exception_case import ExceptionCaseWorkflow
from workflows.month_end_close import MonthEndCloseWorkflow, ScheduledCloseWorkflow
from workflows.override_signoff import OverrideSignoffWorkflow

WORKFLOWS: Sequence[type] = (
    DealWorkflow, ContractWorkflow, ExceptionCaseWorkflow, EscalationWorkflow, OverrideSignoffWorkflow,
    MonthEndCloseWorkflow, ScheduledCloseWorkflow,
)  # fmt: skip


def configure_logging(level: str = "INFO") -> None:
    """JSON logs; workflow and run ids are bound by the callers, never personal data."""
    logging.basicConfig(level=level, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
    )


async def connect_client(settings: Settings) -> Client:
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.effective_temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        interceptors=[TracingInterceptor()],
        api_key=api_key,
        tls=settings.temporal_tls or api_key is not None,
        grpc_compression=GrpcCompression.GZIP if settings.temporal_gzip else GrpcCompression.NONE,
    )


def hubspot_client(settings: Settings) -> httpx.AsyncClient:
    token = (
        settings.hubspot_access_token.get_secret_value() if settings.hubspot_access_token else ""
    )
    return httpx.AsyncClient(
        base_url=settings.hubspot_api_base,
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx.Timeout(10.0),
    )


def activity_list(
    pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    smtp: SmtpSettings | None = None,
    chat_webhook_url: str | None = None,
) -> list[Callable[..., Any]]:
    """Every activity; without `smtp`, notifications fail (non-retryable) and cases record
    that nobody could be told."""
    records = RecordsActivities(pool)
    cases = CaseActivities(pool)
    notifications = NotificationActivities(pool, smtp, chat_webhook_url, http)
    invoicing = InvoicingActivities(pool)
    invoice_dispatch = InvoiceDispatchActivities(pool, smtp)
    contracts = ContractActivities(pool)
    ledger = LedgerActivities(pool)
    crm = CrmActivities(HubSpotCrm(http))
    close = CloseActivities(pool)
    return [
        records.load_customer_standing,
        records.record_gate_results,
        records.book_contract,
        records.record_outcome,
        cases.open_case,
        cases.record_case_event,
        cases.record_override_event,
        notifications.send_notification,
        invoicing.issue_invoice,
        invoice_dispatch.dispatch_invoice,
        contracts.start_contract_records,
        contracts.customer_on_credit_hold,
        contracts.close_pricing_exception,
        contracts.record_credit,
        contracts.record_billing_contact,
        contracts.record_milestone_delivery,
        contracts.record_time_approval,
        contracts.invoice_metered,
        contracts.record_amendment,
        contracts.finish_contract,
        ledger.post_recognition,
        crm.read_crm_deal,
        close.prepare_close,
        close.post_close,
        close.check_close,
        close.report_close,
        close.lock_period,
        close.record_close_event,
    ]


STICKY_TIMEOUT = timedelta(seconds=30)
# Our activities mostly wait on PostgreSQL, SMTP or the CRM, so a worker can run many at
# once; with too few slots, activities queue in the server instead, where each one is
# written to the task queue's table and read back (bench/README.md: ninth session).
MAX_CONCURRENT_ACTIVITIES: int = Settings.model_fields["worker_max_concurrent_activities"].default


def workflow_runner() -> SandboxedWorkflowRunner:
    """The deterministic sandbox: the SDK's restrictions on modules (the clock, randomness,
    threads, files, the network), with two changes.

    - pydantic's e-mail validator and its IDNA codec are loaded lazily on first use, so
      they are passed through instead of reloaded per workflow.
    - The builtins `open`, `input` and `breakpoint` are not checked at run time. To check
      them, the SDK swaps `builtins` `isinstance`, `issubclass`, `open`, `input` and
      `breakpoint` for Python wrappers for the whole process whenever any workflow code
      runs, and again for every payload it converts: every `isinstance` in the activities,
      asyncpg and pydantic then costs a Python call (with it, a deal's activities took 0.96 s
      instead of 0.72 s under load; bench/README.md). The same check is made on the source
      instead: tests/unit/test_workflow_sandbox.py fails on any call of those builtins in
      a workflow module.
    """
    restrictions = SandboxRestrictions.default.with_passthrough_modules("email_validator", "idna")
    members = restrictions.invalid_module_members
    modules_only = {name: m for name, m in members.children.items() if name != "__builtins__"}
    return SandboxedWorkflowRunner(
        restrictions=dataclasses.replace(
            restrictions, invalid_module_members=dataclasses.replace(members, children=modules_only)
        )
    )


def compile_workflow_modules() -> None:
    """The sandbox re-runs each workflow module for every new workflow; without bytecode on
    disk (PYTHONDONTWRITEBYTECODE, a read-only install) it compiles the source every time.
    Writing it once at start-up measured about 10% more deals per second (bench/README.md)."""
    compileall.compile_dir(str(Path(workflows.__file__).parent), quiet=1)


def build_worker(
    client: Client,
    pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    task_queue: str,
    smtp: SmtpSettings | None = None,
    chat_webhook_url: str | None = None,
    max_concurrent_activities: int = MAX_CONCURRENT_ACTIVITIES,
) -> Worker:
    compile_workflow_modules()
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=activity_list(pool, http, smtp, chat_webhook_url),
        workflow_runner=workflow_runner(),
        max_concurrent_activities=max_concurrent_activities,
        # Under a burst (month end, a bulk import) workflow tasks can wait longer than the
        # SDK's 10 s for this worker's sticky queue; each timeout then replays the whole
        # history on another poll, costing CPU exactly when there is none to spare. A crashed
        # worker's workflows move to another one after this long instead.
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
    )


async def register_search_attributes(client: Client, namespace: str) -> None:
    """Make sure the namespace knows our search attributes (a workflow that sets an unknown
    one cannot complete its task). Temporal Cloud refuses this call: register them there
    with tcld or the Cloud UI (docs/operators.md)."""
    try:
        added = await ensure_search_attributes(client, namespace)
    except RPCError as exc:
        structlog.get_logger().warning("search_attributes.not_registered", reason=exc.message)
        return
    if added:
        structlog.get_logger().info("search_attributes.registered", names=added)


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (or forever), then drain and close the pool."""
    async with AsyncExitStack() as stack:
        client = await connect_client(settings)
        await register_search_attributes(client, settings.temporal_namespace)
        pool = await create_pool(settings.effective_database_url, max_size=20)
        stack.push_async_callback(pool.close)
        await store_rule_book(pool, load_rule_book(settings.rules_dir))
        await ensure_close_schedule(client, settings.task_queue,
                                    load_rule_book(settings.rules_dir).version)  # fmt: skip
        http = await stack.enter_async_context(hubspot_client(settings))
        smtp = smtp_settings(settings) if settings.smtp_host else None
        stack.push_async_callback(close_smtp_sessions)  # once the worker has stopped
        worker = build_worker(client, pool, http, settings.task_queue, smtp=smtp,
                              chat_webhook_url=settings.chat_webhook_url.get_secret_value()
                              if settings.chat_webhook_url else None,
                              max_concurrent_activities=settings.worker_max_concurrent_activities)  # fmt: skip
        structlog.get_logger().info("worker.started", task_queue=settings.task_queue)
        async with worker:
            with worker_gc(settings.gc_young_threshold):  # everything has started
                await (stop.wait() if stop else asyncio.Future())


if __name__ == "__main__":
    configure_logging(get_settings().log_level)
    event_loop.run(run_worker(get_settings()))
