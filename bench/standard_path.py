"""Standard-path benchmark: clean deals through `DealWorkflow`, against a trivial baseline.

    python -m bench.standard_path              # 4 rounds of 500 deals and 500 baseline workflows (B S S B B S S B)
    python -m bench.standard_path --quick      # 1 round of 50 of each: a smoke run
    python -m bench.standard_path --deals 200 --rounds 4 --json out.json

The script starts its own embedded stack (the real Temporal dev server and PostgreSQL, from
their wheels) in a temporary state dir on free ports, unless TEMPORAL_ADDRESS / DATABASE_URL
name servers to use instead; migrates, and runs the product's worker in this process
(`starter.services.running_services`, without the HTTP API). Beside it, on its own task queue,
the same client runs a second worker with the product worker's options for the baseline
(`bench.baseline`: the same shape as a deal with no domain work: as many empty regular
activities as a deal runs, then a child with as many as its contract workflow runs before its
first timer, and a timer; counted from the warm-up's histories). Book deals are moved to
start in the run's month, and a phase ends when every child has settled.

Each phase starts N workflows at once (at most `--concurrency` start calls in flight; with
`--in-flight F`, a new one only when fewer than F are between start call and result), waits
for every result with a deadline, and measures workflows/s over the wall time from the first
start call to the last result, and each workflow's latency from its start call to its result.
After the measured phases a sample of histories tells where the time went (server timestamps),
and CPU seconds per piece (this process, the Temporal server, PostgreSQL) are reported.
See bench/README.md for the choices and the recorded figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx
import psutil
from temporalio.api.enums.v1 import EventType, TimeoutType, WorkflowTaskFailedCause
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.worker import Worker

import worker as worker_module
from bench import baseline_steps
from bench.baseline import BaselineContractWorkflow, BaselineWorkflow
from bench.baseline_steps import BaselineShape, empty_step, last_child_step
from models.billing import first_invoice
from models.calendar_math import ONE_DAY, add_months
from models.customer import CustomerStanding
from models.deal import DealSubmission
from models.deal_flow import DealInput, DealOutcome, DealStage
from models.qa import run_gates
from models.rules import RuleSet
from starter import event_loop
from starter.deal_start import start_deal
from starter.embedded_temporal import temporal_binary
from starter.ports import free_ports
from starter.rules_loader import load_rules
from starter.services import Services, running_services
from starter.settings import PROJECT_ROOT, Settings
from starter.stack import stop_stack
from workflows.deal import DealWorkflow

DEFAULT_DEALS = 500
QUICK_DEALS = 50
DEFAULT_CONCURRENCY = 50
DEFAULT_WARMUP = 100
QUICK_WARMUP = 10
DEFAULT_ROUNDS = 4
DEFAULT_DEADLINE_S = 900.0
DEFAULT_PROFILE_SAMPLE = 100
TARGET_RATIO = 0.7

SAMPLE_DIR = PROJECT_ROOT / "starter" / "sample_data"
CODE_PATHS = ("workflows", "activities", "models", "starter", "rules", "worker.py", "bench")
BASELINE = "baseline"
STANDARD = "standard path"


# --- the deals ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Templates:
    """Book deals that take the standard path as a new customer's first order."""

    deals: tuple[DealSubmission, ...]
    excluded: dict[str, str]  # deal id -> why it cannot serve as a standard-path template


def shift_months(data: dict[str, Any], months: int) -> dict[str, Any]:
    """A book deal (as JSON) moved by whole months: first days stay first days, last days
    stay last days (an end date is the day before the shifted day after it)."""

    def start(value: str | None) -> str | None:
        return None if value is None else add_months(date.fromisoformat(value), months).isoformat()

    def last(value: str | None) -> str | None:
        if value is None:
            return None
        return (add_months(date.fromisoformat(value) + ONE_DAY, months) - ONE_DAY).isoformat()

    out: dict[str, Any] = json.loads(json.dumps(data))
    out["start_date"], out["end_date"] = start(out["start_date"]), last(out["end_date"])
    out["closed_won_date"] = start(out.get("closed_won_date"))
    for line in out["lines"]:
        line["discount_expiry"] = last(line.get("discount_expiry"))
    for milestone in out.get("milestones", []):
        milestone["due_date"] = start(milestone["due_date"])
    return out


def standard_path_templates(
    rules: RuleSet, today: date, sample_dir: Path = SAMPLE_DIR
) -> Templates:
    """The clean deals of book.json (not "failing" in expected_qa.json) that, for a new
    customer, pass every gate and bill at signing, so they run every step of the path.

    Each is moved by whole months to start in `today`'s month, so a run does the same work
    whatever the date: a term that started months ago would make its contract catch up the
    periods since (an invoice and an e-mail each), more of them the later the run."""
    book: list[dict[str, Any]] = json.loads((sample_dir / "book.json").read_text("utf-8"))
    expected: dict[str, Any] = json.loads((sample_dir / "expected_qa.json").read_text("utf-8"))
    failing = {str(item["deal_id"]) for item in expected["failing"]}
    kept: list[DealSubmission] = []
    excluded: dict[str, str] = {}
    for raw in book:
        begins = date.fromisoformat(raw["start_date"])
        months = (today.year - begins.year) * 12 + today.month - begins.month
        deal = DealSubmission.model_validate(shift_months(raw, months))
        if deal.deal_id in failing:
            continue
        standing = CustomerStanding.new(f"new-{deal.customer.customer_id}")
        failed = [r.check_id for r in run_gates(deal, standing, rules) if not r.passed]
        if failed:
            excluded[deal.deal_id] = "as a new customer's first order it fails " + ", ".join(failed)
        elif first_invoice(deal) is None:
            excluded[deal.deal_id] = (
                f"nothing billable at signing ({deal.billing_frequency.value} billing): "
                "skips the invoice activity"
            )
        else:
            kept.append(deal)
    if not kept:
        raise SystemExit("no clean deal of book.json takes the standard path")
    return Templates(tuple(kept), excluded)


def derive_deal(template: DealSubmission, deal_id: str, customer_id: str) -> DealSubmission:
    """The template under a new deal id and a new customer id (so: a new customer's standing);
    credit limit, deposit and everything else stay as approved on the template."""
    data = template.model_dump(mode="json")
    data["deal_id"] = deal_id
    data["customer"]["customer_id"] = customer_id
    return DealSubmission.model_validate(data)


# --- measuring ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One workflow: wall-clock times (epoch seconds) of its start call and result."""

    workflow_id: str
    start_called: float
    start_returned: float
    result_at: float
    error: str | None

    @property
    def latency(self) -> float:
        return self.result_at - self.start_called


@dataclass(frozen=True)
class CpuSample:
    machine_busy_s: float  # busy CPU seconds summed over every core of the machine
    steal_s: float  # CPU seconds the hypervisor gave to other guests while we wanted them
    pieces: dict[str, dict[int, float]]  # piece -> pid -> CPU seconds (user + system)
    gc_s: float = 0.0  # seconds this process had spent in the garbage collector


GC_ROW = "  of which garbage collection"  # shown under the first piece: this process


class GcClock:
    """Seconds this process has spent in the cyclic garbage collector (`gc.callbacks`)."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.total_s += time.perf_counter() - self._began


GC_CLOCK = GcClock()


class CpuMeter:
    """CPU seconds used by the pieces of the benchmark (processes and their children); the
    first piece is this process, whose time in the garbage collector is shown apart."""

    def __init__(self, pieces: dict[str, tuple[int, bool]]) -> None:
        self._pieces = pieces  # piece -> (pid, include children)
        if GC_CLOCK not in gc.callbacks:
            gc.callbacks.append(GC_CLOCK)

    def sample(self) -> CpuSample:
        t = psutil.cpu_times()
        busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
        found: dict[str, dict[int, float]] = {}
        for name, (pid, children) in self._pieces.items():
            found[name] = {}
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)] if children else [root]
            except psutil.Error:
                continue
            for proc in procs:
                try:
                    times = proc.cpu_times()
                except psutil.Error:
                    continue
                found[name][proc.pid] = times.user + times.system
        return CpuSample(busy, getattr(t, "steal", 0.0), found, GC_CLOCK.total_s)

    @staticmethod
    def used(before: CpuSample, after: CpuSample) -> dict[str, float]:
        """CPU seconds per piece between two samples (processes gone by `after` are lost)."""
        used: dict[str, float] = {}
        for name, now in after.pieces.items():
            then = before.pieces.get(name, {})
            used[name] = sum(cpu - then.get(pid, 0.0) for pid, cpu in now.items())
        machine = after.machine_busy_s - before.machine_busy_s
        used["other processes (not ours)"] = max(0.0, machine - sum(used.values()))
        used["machine (all processes)"] = machine
        used["stolen by the hypervisor"] = after.steal_s - before.steal_s
        rows = list(used.items())
        rows.insert(1, (GC_ROW, after.gc_s - before.gc_s))
        return dict(rows)


@dataclass
class Phase:
    label: str
    round_no: int
    runs: list[Run]
    timed_out: int
    cpu: dict[str, float] = field(default_factory=dict)
    settled_at: float = 0.0  # when every child had settled (0: not waited for)
    unsettled: int = 0  # children still not settled at the deadline

    @property
    def ok(self) -> list[Run]:
        return [r for r in self.runs if r.error is None]

    @property
    def errors(self) -> list[str]:
        return [f"{r.workflow_id}: {r.error}" for r in self.runs if r.error is not None]

    @property
    def wall_s(self) -> float:
        started = [r.start_called for r in self.runs if r.start_called > 0]
        if not started:
            return 0.0
        return max(self.settled_at, *(r.result_at for r in self.runs)) - min(started)

    @property
    def settle_s(self) -> float:
        """How long after the last result the children took to settle."""
        last = max((r.result_at for r in self.runs), default=0.0)
        return max(0.0, self.settled_at - last) if self.settled_at else 0.0

    @property
    def rate(self) -> float:
        return len(self.ok) / self.wall_s if self.wall_s > 0 else 0.0

    def latency(self, q: int) -> float:
        return percentile([r.latency for r in self.ok], q)

    def start_call(self, q: int) -> float:
        return percentile([r.start_returned - r.start_called for r in self.ok], q)

    def summary(self) -> dict[str, Any]:
        return {
            "phase": self.label, "round": self.round_no, "n": len(self.runs),
            "completed": len(self.ok), "timed_out": self.timed_out,
            "wall_s": round(self.wall_s, 3), "workflows_per_s": round(self.rate, 3),
            "p50_s": round(self.latency(50), 3), "p99_s": round(self.latency(99), 3),
            "start_call_p50_s": round(self.start_call(50), 4),
            "settle_after_last_result_s": round(self.settle_s, 3), "unsettled": self.unsettled,
            "cpu_s": {k: round(v, 2) for k, v in self.cpu.items()},
            "errors": self.errors[:20],
        }  # fmt: skip


def percentile(values: Sequence[float], q: int) -> float:
    """The q-th percentile (linear interpolation between closest ranks); 0 for no values."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


StartOne = Callable[[int], Awaitable[WorkflowHandle[Any, Any]]]
CheckResult = Callable[[Any], str | None]


async def run_phase(
    label: str,
    round_no: int,
    count: int,
    start_one: StartOne,
    check: CheckResult,
    *,
    concurrency: int,
    deadline_s: float,
    in_flight: int | None = None,
    meter: CpuMeter | None = None,
    settled: Callable[[], Awaitable[int]] | None = None,
) -> Phase:
    """Start `count` workflows at once (`concurrency` start calls at most in flight) and wait
    for every result until `deadline_s`; the ones still running then count as timed out.
    With `settled` (how many of the phase's children have settled), the phase also waits for
    all `count` children, and its wall time and CPU run until they have."""
    gate = asyncio.Semaphore(concurrency)
    flight = asyncio.Semaphore(in_flight) if in_flight else contextlib.nullcontext()

    async def drive(i: int) -> Run:
        async with flight:
            return await drive_one(i)

    async def drive_one(i: int) -> Run:
        called = returned = 0.0
        workflow_id = f"#{i}"
        try:
            async with gate:
                called = time.time()
                handle = await start_one(i)
                returned = time.time()
            workflow_id = handle.id
            error = check(await handle.result())
        except Exception as exc:  # a failed start or workflow is a finding: count it, go on
            error = f"{type(exc).__name__}: {exc}"
        return Run(workflow_id, called, returned, time.time(), error)

    before = meter.sample() if meter else None
    tasks = [asyncio.create_task(drive(i)) for i in range(count)]
    began = time.monotonic()
    try:
        done, pending = await asyncio.wait(tasks, timeout=deadline_s)
    finally:
        for task in tasks:
            task.cancel()  # no-op on finished ones; stops the rest on deadline or Ctrl-C
        await asyncio.gather(*tasks, return_exceptions=True)
    runs = [task.result() for task in tasks if task in done]
    phase = Phase(label, round_no, runs, timed_out=len(pending))
    if settled is not None:
        phase.settled_at, phase.unsettled = await _wait_settled(
            settled, count, deadline_s - (time.monotonic() - began)
        )
    if meter and before:
        phase.cpu = CpuMeter.used(before, meter.sample())
    return phase


async def _wait_settled(
    settled: Callable[[], Awaitable[int]], count: int, left_s: float
) -> tuple[float, int]:
    """Poll (every 0.1 s, one cheap read each) until `count` children have settled or the
    time is up; (when they had, or 0.0; how many had not)."""
    give_up = time.monotonic() + max(left_s, 0.0)
    while True:
        found = await settled()
        if found >= count:
            return time.time(), 0
        if time.monotonic() >= give_up:
            return 0.0, count - found
        await asyncio.sleep(0.1)


# --- where the time goes (history timestamps) ---------------------------------------------


@dataclass(frozen=True)
class Breakdown:
    """One closed workflow's history, in seconds between server timestamps."""

    started_at: float
    closed_at: float
    wft_queue: float  # workflow task scheduled -> started (picked up by the worker)
    wft_run: float  # workflow task started -> completed (the worker runs workflow code)
    act_queue: float  # activity scheduled -> started
    act_run: float  # activity started -> completed
    workflow_tasks: int
    activities: int
    activity_retries: int
    wft_failures: int
    events: int
    history_bytes: int
    activity_types: tuple[str, ...] = ()
    activity_options: frozenset[str] = frozenset()  # timeouts and retry policy, as scheduled
    wft_failure_causes: tuple[str, ...] = ()  # e.g. sticky queue schedule-to-start timeouts

    @property
    def total(self) -> float:
        return self.closed_at - self.started_at


def _seconds(event: Any) -> float:
    nanos: int = event.event_time.ToNanoseconds()
    return nanos / 1e9


def _activity_options(attrs: Any) -> str:
    """How an activity was scheduled: its kind of timeouts and retry policy, in words."""

    def dur(d: Any) -> str:
        return f"{d.ToTimedelta().total_seconds():g}s" if d.ByteSize() else "-"

    retry = attrs.retry_policy
    return (
        f"start_to_close={dur(attrs.start_to_close_timeout)} "
        f"schedule_to_close={dur(attrs.schedule_to_close_timeout)} "
        f"heartbeat={dur(attrs.heartbeat_timeout)} "
        f"retry(initial={dur(retry.initial_interval)} backoff={retry.backoff_coefficient:g} "
        f"max={dur(retry.maximum_interval)} attempts={retry.maximum_attempts or 'unlimited'})"
    )


async def breakdown(client: Client, workflow_id: str) -> Breakdown:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    at: dict[int, float] = {}
    sums = {"wft_queue": 0.0, "wft_run": 0.0, "act_queue": 0.0, "act_run": 0.0}
    wfts = acts = retries = size = 0
    types: list[str] = []
    causes: list[str] = []
    options: set[str] = set()
    for ev in history.events:
        t = at[ev.event_id] = _seconds(ev)
        size += ev.ByteSize()
        kind = ev.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            attrs_ws = ev.workflow_task_started_event_attributes
            sums["wft_queue"] += t - at[attrs_ws.scheduled_event_id]
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            sums["wft_run"] += t - at[ev.workflow_task_completed_event_attributes.started_event_id]
            wfts += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            cause = ev.workflow_task_failed_event_attributes.cause
            causes.append(f"failed: {WorkflowTaskFailedCause.Name(cause)}")
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            timeout = ev.workflow_task_timed_out_event_attributes.timeout_type
            causes.append(f"timed out: {TimeoutType.Name(timeout)}")
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs_sc = ev.activity_task_scheduled_event_attributes
            types.append(attrs_sc.activity_type.name)
            options.add(_activity_options(attrs_sc))
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs_as = ev.activity_task_started_event_attributes
            sums["act_queue"] += t - at[attrs_as.scheduled_event_id]
            retries += max(0, attrs_as.attempt - 1)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sums["act_run"] += t - at[ev.activity_task_completed_event_attributes.started_event_id]
            acts += 1
    events = history.events
    return Breakdown(
        started_at=_seconds(events[0]), closed_at=_seconds(events[-1]),
        wft_queue=sums["wft_queue"], wft_run=sums["wft_run"],
        act_queue=sums["act_queue"], act_run=sums["act_run"],
        workflow_tasks=wfts, activities=acts, activity_retries=retries,
        wft_failures=len(causes), events=len(events), history_bytes=size,
        activity_types=tuple(types), activity_options=frozenset(options),
        wft_failure_causes=tuple(causes),
    )  # fmt: skip


async def contract_start_activities(client: Client, deal_workflow_id: str) -> tuple[str, ...]:
    """The activities a deal's contract workflow ran before its first timer."""
    contract_id = "contract-" + deal_workflow_id.removeprefix("deal-")
    for _ in range(100):  # the timer follows the last activity by one workflow task
        types: list[str] = []
        async for ev in client.get_workflow_handle(contract_id).fetch_history_events():
            if ev.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                return tuple(types)
            if ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                types.append(ev.activity_task_scheduled_event_attributes.activity_type.name)
        await asyncio.sleep(0.2)
    raise BenchError(f"{contract_id} has not reached its first timer")


async def profile(
    client: Client, phase: Phase, sample: int, deadline_s: float = 300.0
) -> list[tuple[Run, Breakdown]]:
    """Breakdowns of up to `sample` workflows spread evenly over the phase's completed runs."""
    ok = sorted(phase.ok, key=lambda r: r.start_called)
    if not ok or sample <= 0:
        return []
    step = max(1, len(ok) // sample)
    chosen = ok[::step][:sample]
    gate = asyncio.Semaphore(10)

    async def one(run: Run) -> tuple[Run, Breakdown]:
        async with gate:
            return run, await asyncio.wait_for(breakdown(client, run.workflow_id), 60)

    return list(await asyncio.wait_for(asyncio.gather(*(one(r) for r in chosen)), deadline_s))


# --- the run ------------------------------------------------------------------------------


def bench_settings(state_dir: Path, tag: str) -> Settings:
    """Embedded pieces on free ports in `state_dir`, or TEMPORAL_ADDRESS / DATABASE_URL."""
    temporal_port, ui_port, pg_port, api_port = free_ports(4)
    return Settings(
        state_dir=state_dir,
        temporal_address=os.environ.get("TEMPORAL_ADDRESS") or None,
        database_url=os.environ.get("DATABASE_URL") or None,
        temporal_port=temporal_port,
        temporal_ui_port=ui_port,
        postgres_port=pg_port,
        api_port=api_port,
        task_queue=f"revops-bench-{tag}",
    )


async def product_worker_options(services: Services) -> dict[str, Any]:
    """The keyword options `worker.build_worker` gives the product's `Worker` (sandbox runner,
    concurrency limits, ...), minus the task queue, workflows and activities. They are
    captured from a call with `Worker` stood in for, so no second product worker is built."""
    captured: dict[str, Any] = {}

    def capture(*_client: Client, **options: Any) -> None:
        captured.update(options)

    async with httpx.AsyncClient() as http:  # never called: the activities are only created
        with patch.object(worker_module, "Worker", capture):
            worker_module.build_worker(services.client, services.pool, http, "unused")
    for name in ("task_queue", "workflows", "activities"):
        captured.pop(name, None)
    return captured


def baseline_worker(client: Client, task_queue: str, options: dict[str, Any]) -> Worker:
    """The baseline's own worker: the same client (data converter, interceptors) and the
    same worker options as the product's worker; only its workflow and activity differ."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[BaselineWorkflow, BaselineContractWorkflow],
        activities=[empty_step, last_child_step],
        **options,
    )


def check_deal(result: Any) -> str | None:
    if not isinstance(result, DealOutcome):
        return f"unexpected result {result!r}"
    if result.stage is not DealStage.COMPLETED:
        return f"ended {result.stage.value}: {result.outcome}"
    if result.invoice_number is None:
        return "completed without a first invoice"
    return None


def check_baseline(steps: int) -> CheckResult:
    def check(result: Any) -> str | None:
        return None if result == steps else f"unexpected result {result!r}, expected {steps}"

    return check


@dataclass(frozen=True)
class Options:
    deals: int
    rounds: int
    warmup: int
    concurrency: int
    deadline_s: float
    profile_sample: int
    in_flight: int | None = None


class BenchError(RuntimeError):
    """The benchmark cannot measure what it means to (the warm-up failed, say)."""


@dataclass
class Report:
    machine: dict[str, Any]
    templates: list[str]
    excluded: dict[str, str]
    phases: list[Phase]
    breakdowns: dict[str, list[tuple[Run, Breakdown]]]
    steps: int
    deal_activity_types: tuple[str, ...]
    contract_activity_types: tuple[str, ...]
    worker_options: list[str]
    code_changed: bool

    def totals(self, label: str) -> tuple[int, float]:
        phases = [p for p in self.phases if p.label == label and p.round_no > 0]
        return sum(len(p.ok) for p in phases), sum(p.wall_s for p in phases)

    def rate(self, label: str) -> float:
        done, wall = self.totals(label)
        return done / wall if wall > 0 else 0.0

    @property
    def ratio(self) -> float:
        base = self.rate(BASELINE)
        return self.rate(STANDARD) / base if base > 0 else 0.0

    def round_ratios(self) -> list[float]:
        """Each round's deals/s ÷ its baseline/s: the spread the host's noise makes."""
        rates = {(p.round_no, p.label): p.rate for p in self.phases if p.round_no > 0}
        rounds = sorted({r for r, _ in rates})
        return [
            rates[r, STANDARD] / rates[r, BASELINE]
            for r in rounds
            if rates.get((r, BASELINE)) and (r, STANDARD) in rates
        ]

    @property
    def failed(self) -> bool:
        return any(p.errors or p.timed_out or p.unsettled for p in self.phases)

    def activity_options(self, label: str) -> list[str]:
        return sorted({o for _, b in self.breakdowns.get(label, []) for o in b.activity_options})


class Bench:
    def __init__(self, services: Services, templates: Templates, tag: str) -> None:
        self.services = services
        self.client = services.client
        self.templates = templates
        self.tag = tag
        self.baseline_queue = f"{services.settings.task_queue}-baseline"
        self.steps = 0  # activities per deal on the standard path, counted in the warm-up
        self.deal_activity_types: tuple[str, ...] = ()
        self.contract_activity_types: tuple[str, ...] = ()  # before the contract's first timer
        self.worker_options: dict[str, Any] = {}
        pieces = {"python (client + both workers)": (os.getpid(), False)}
        if services.stack.temporal is not None:
            pieces["temporal dev server"] = (services.stack.temporal.pid, True)
        if services.stack.postgres is not None:
            pieces["postgresql"] = (services.stack.postgres.pid, True)
        self.meter = CpuMeter(pieces)

    def deal_inputs(self, phase_id: str, count: int) -> list[DealInput]:
        deals = self.templates.deals
        return [
            DealInput(
                deal=derive_deal(
                    deals[i % len(deals)],
                    deal_id=f"bench-{self.tag}-{phase_id}-{i:05d}",
                    customer_id=f"bench-{self.tag}-{phase_id}-co-{i:05d}",
                ),
                source="api",
                submitted_by="bench",
                rules=self.services.rules,
            )
            for i in range(count)
        ]

    async def standard(self, phase_id: str, count: int, deadline_s: float, opts: Options,
                       round_no: int) -> Phase:  # fmt: skip
        inputs = self.deal_inputs(phase_id, count)  # built before the clock starts
        queue = self.services.settings.task_queue

        async def start_one(i: int) -> WorkflowHandle[Any, Any]:
            started = await start_deal(self.client, inputs[i], queue)
            if not started.started:
                raise RuntimeError(started.message)
            return self.client.get_workflow_handle_for(DealWorkflow.run, started.workflow_id)

        async def settled() -> int:  # contracts that have e-mailed their first invoice
            found: int = await self.services.pool.fetchval(
                "SELECT count(*) FROM audit_event WHERE action = 'invoice.dispatched' "
                "AND subject LIKE $1", f"deal:bench-{self.tag}-{phase_id}-%",
            )  # fmt: skip
            return found

        return await run_phase(
            STANDARD, round_no, count, start_one, check_deal,
            concurrency=opts.concurrency, deadline_s=deadline_s, in_flight=opts.in_flight,
            meter=self.meter,
            settled=settled,
        )  # fmt: skip

    async def baseline(self, phase_id: str, count: int, deadline_s: float, opts: Options,
                       round_no: int) -> Phase:  # fmt: skip
        async def start_one(i: int) -> WorkflowHandle[Any, Any]:
            # The same start options as starter.deal_start.start_deal.
            return await self.client.start_workflow(
                BaselineWorkflow.run,
                BaselineShape(steps=self.steps, child_steps=len(self.contract_activity_types)),
                id=f"bench-baseline-{self.tag}-{phase_id}-{i:05d}",
                task_queue=self.baseline_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                static_summary=f"baseline {i} from bench",
            )

        prefix = f"bench-baseline-{self.tag}-{phase_id}-"

        async def settled() -> int:
            return sum(1 for child in baseline_steps.SETTLED if child.startswith(prefix))

        return await run_phase(
            BASELINE, round_no, count, start_one, check_baseline(self.steps),
            concurrency=opts.concurrency, deadline_s=deadline_s, in_flight=opts.in_flight,
            meter=self.meter,
            settled=settled,
        )  # fmt: skip

    async def calibrate(self, warm: Phase) -> None:
        """Count the activities a deal runs on the standard path (from the warm-up's
        histories), so the baseline runs exactly as many."""
        if warm.errors or warm.timed_out or not warm.ok:
            details = "; ".join(warm.errors[:3]) or f"{warm.timed_out} still running"
            raise BenchError(f"the warm-up deals did not complete: {details}")
        sample = await profile(self.client, warm, len(warm.ok))
        counts = {b.activity_types for _, b in sample}
        if len(counts) != 1:
            raise BenchError(f"warm-up deals ran different activities: {sorted(counts)}")
        self.deal_activity_types = counts.pop()
        self.steps = len(self.deal_activity_types)
        contracts = {await contract_start_activities(self.client, run.workflow_id)
                     for run in warm.ok}  # fmt: skip
        if len(contracts) != 1:
            raise BenchError(f"warm-up contracts ran different activities: {sorted(contracts)}")
        self.contract_activity_types = contracts.pop()
        if not self.contract_activity_types:
            raise BenchError("the warm-up contracts ran no activity before their first timer")

    async def run(self, opts: Options) -> list[Phase]:
        phases: list[Phase] = []
        # Round 0 (not measured): sandbox imports, pool connections, and the step count.
        warm_deadline = min(opts.deadline_s, 60.0 + 2.0 * opts.warmup)
        eprint(f"warm-up: {opts.warmup} deals")
        phases.append(await self.standard("w", opts.warmup, warm_deadline, opts, 0))
        await self.calibrate(phases[-1])
        self.worker_options = await product_worker_options(self.services)
        async with baseline_worker(self.client, self.baseline_queue, self.worker_options):
            eprint(f"warm-up: {opts.warmup} baseline workflows of {self.steps} empty activities "
                   f"and a child of {len(self.contract_activity_types)}")  # fmt: skip
            phases.append(await self.baseline("w", opts.warmup, warm_deadline, opts, 0))
            for r, label in phase_order(opts.rounds):
                if label == BASELINE:
                    eprint(f"round {r}: {opts.deals} baseline workflows")
                    run_one = self.baseline
                else:
                    eprint(f"round {r}: {opts.deals} deals through the standard path")
                    run_one = self.standard
                phases.append(await run_one(f"r{r}", opts.deals, opts.deadline_s, opts, r))
        return phases


def phase_order(rounds: int) -> list[tuple[int, str]]:
    """(round, phase) in the order they run: B S, then S B, then B S, …

    The stack gets dearer as a run goes on (the worker's workflow cache fills with the
    children left waiting on their timers, the server's database and memory grow), so a
    phase run later costs more CPU than the same phase run earlier (bench/README.md,
    "Order"). Alternating the order makes both kinds run as often early as late; with an
    even number of rounds the drift costs both alike."""
    order: list[tuple[int, str]] = []
    for r in range(1, rounds + 1):
        pair = (BASELINE, STANDARD) if r % 2 else (STANDARD, BASELINE)
        order += [(r, label) for label in pair]
    return order


def eprint(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def code_fingerprint() -> str:
    """Names, sizes and mtimes of the code and rules the worker loads: a change during the
    run (the workflow sandbox re-imports workflow modules from disk) would mix versions."""
    digest = hashlib.sha256()
    for top in CODE_PATHS:
        root = PROJECT_ROOT / top
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in files:
            if path.suffix in {".py", ".yaml"} and path.is_file():
                stat = path.stat()
                digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def code_version() -> str:
    """The git commit and whether tracked files differ from it (read-only git calls)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True, timeout=10
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "?"
    return f"{commit or '?'}{' + uncommitted changes' if dirty else ''}"


def machine_description() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")
    try:
        cli = subprocess.run(
            [str(temporal_binary()), "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError, RuntimeError):
        cli = "?"
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu_model": model or platform.processor(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "temporalio": version("temporalio"),
        "temporal_cli": cli,
        "code": code_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


async def benchmark(opts: Options) -> Report:
    rules = load_rules(PROJECT_ROOT / "rules")
    templates = standard_path_templates(rules, date.today())
    machine = machine_description()
    fingerprint = code_fingerprint()
    tag = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory(prefix="revops-bench-", ignore_cleanup_errors=True) as tmp:
        settings = bench_settings(Path(tmp) / "state", tag)
        try:
            eprint("starting the stack (Temporal dev server, PostgreSQL, migrations, worker)")
            async with running_services(settings, with_api=False) as services:
                machine["temporal_address"] = services.stack.temporal_address
                machine["postgresql"] = await services.pool.fetchval("SHOW server_version")
                bench = Bench(services, templates, tag)
                phases = await bench.run(opts)
                breakdowns: dict[str, list[tuple[Run, Breakdown]]] = {}
                if opts.profile_sample > 0:
                    eprint(f"reading up to {opts.profile_sample} histories per phase")
                    for phase in phases:
                        if phase.round_no == opts.rounds:
                            breakdowns[phase.label] = await profile(
                                services.client, phase, opts.profile_sample
                            )
        finally:
            if settings.embedded_temporal or settings.embedded_database:
                # Belt and braces: whatever was started for this state dir stops, even when
                # running_services itself failed half-way.
                await asyncio.to_thread(stop_stack, settings)
    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return Report(
        machine=machine,
        templates=[d.deal_id for d in templates.deals],
        excluded=templates.excluded,
        phases=phases,
        breakdowns=breakdowns,
        steps=bench.steps,
        deal_activity_types=bench.deal_activity_types,
        contract_activity_types=bench.contract_activity_types,
        worker_options=sorted(f"{k}={_brief(v)}" for k, v in bench.worker_options.items()),
        code_changed=code_fingerprint() != fingerprint,
    )


def _brief(value: Any) -> str:
    """A worker option in a few words: scalars as they are, objects by their type."""
    if value is None or isinstance(value, bool | int | float | str):
        return repr(value)
    return type(value).__name__


# --- output -------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def results_table(report: Report) -> list[str]:
    lines = [
        f"{'phase':<14} {'round':>5} {'N':>5} {'wall s':>8} {'workflows/s':>12} "
        f"{'p50 s':>7} {'p99 s':>7} {'failed':>6}",
    ]
    for p in report.phases:
        if p.round_no == 0:
            continue
        failed = len(p.runs) - len(p.ok) + p.timed_out
        lines.append(
            f"{p.label:<14} {p.round_no:>5} {len(p.runs) + p.timed_out:>5} {p.wall_s:>8.2f} "
            f"{p.rate:>12.2f} {p.latency(50):>7.2f} {p.latency(99):>7.2f} {failed:>6}"
        )
    ratio = report.ratio
    verdict = "MET" if ratio >= TARGET_RATIO else "NOT MET"
    lines.append(
        f"ratio deals/s ÷ baseline/s = {report.rate(STANDARD):.2f} ÷ "
        f"{report.rate(BASELINE):.2f} = {ratio:.2f}  (target ≥ {TARGET_RATIO}: {verdict})"
    )
    per_round = report.round_ratios()
    if len(per_round) > 1:
        lines.append(
            "ratio per round: "
            + ", ".join(f"{r:.2f}" for r in per_round)
            + f" (the ratio above is over the sums; spread {min(per_round):.2f} to {max(per_round):.2f})"
        )
    return lines


def cpu_table(report: Report) -> list[str]:
    measured = [p for p in report.phases if p.round_no > 0 and p.cpu]
    if not measured:
        return []
    cores = int(report.machine["cores"])
    names = list(measured[0].cpu)
    lines = [
        "CPU ms per workflow (and share of all cores over the phase's wall time):",
        f"{'':<32}" + "".join(f"{f'{p.label} r{p.round_no}':>24}" for p in measured),
    ]
    for name in names:
        cells = []
        for p in measured:
            used = p.cpu.get(name, 0.0)
            share = used / (p.wall_s * cores) if p.wall_s > 0 else 0.0
            per = used / max(1, len(p.ok))
            cells.append(f"{ms(per):>14} ({share:>5.0%})")
        lines.append(f"{name:<32}" + "".join(f"{c:>24}" for c in cells))
    return lines


def profile_table(report: Report) -> list[str]:
    if not report.breakdowns:
        return []
    labels = list(report.breakdowns)
    rows: list[tuple[str, Callable[[list[tuple[Run, Breakdown]]], str]]] = [
        ("sampled workflows", lambda s: str(len(s))),
        ("start call (client RPC)", lambda s: ms(_mean(r.start_returned - r.start_called for r, _ in s))),
        ("start call -> execution started", lambda s: ms(_mean(b.started_at - r.start_called for r, b in s))),
        ("workflow tasks: queue wait", lambda s: ms(_mean(b.wft_queue for _, b in s))),
        ("workflow tasks: worker run", lambda s: ms(_mean(b.wft_run for _, b in s))),
        ("activities: queue wait", lambda s: ms(_mean(b.act_queue for _, b in s))),
        ("activities: execution", lambda s: ms(_mean(b.act_run for _, b in s))),
        ("execution started -> closed", lambda s: ms(_mean(b.total for _, b in s))),
        ("closed -> result at client", lambda s: ms(_mean(r.result_at - b.closed_at for r, b in s))),
        ("start call -> result (mean)", lambda s: ms(_mean(r.latency for r, _ in s))),
        ("workflow tasks / activities", lambda s: f"{_mean(b.workflow_tasks for _, b in s):.1f} / {_mean(b.activities for _, b in s):.1f}"),
        ("activity retries, WFT failures", lambda s: f"{sum(b.activity_retries for _, b in s)}, {sum(b.wft_failures for _, b in s)}"),
        ("history events / KiB", lambda s: f"{_mean(b.events for _, b in s):.0f} / {_mean(b.history_bytes for _, b in s) / 1024:.1f}"),
    ]  # fmt: skip
    lines = [
        "Where the time goes: mean ms per workflow, from history timestamps (last round):",
        f"{'':<34}" + "".join(f"{label:>16}" for label in labels),
    ]
    for name, cell in rows:
        lines.append(f"{name:<34}" + "".join(f"{cell(report.breakdowns[x]):>16}" for x in labels))
    return lines


def _mean(values: Any) -> float:
    data = [float(v) for v in values]
    return statistics.fmean(data) if data else 0.0


def print_report(report: Report, opts: Options, command: str) -> None:
    m = report.machine
    print(f"command: {command}")
    print(
        f"machine: {m['cores']} cores ({m['cpu_model']}), {m['memory_gib']} GiB RAM, {m['os']}; "
        f"Python {m['python']}, temporalio {m['temporalio']}, {m['temporal_cli']}, "
        f"PostgreSQL {m.get('postgresql', '?')}"
    )
    print(f"load average at start / end: {m['load_average_at_start']} / {m['load_average_at_end']}")
    print(f"code: {m['code']}")
    print(
        f"deals: {len(report.templates)} templates from book.json, each run under a new deal "
        f"and customer id; start concurrency {opts.concurrency}; "
        f"in flight: {opts.in_flight or 'all N'}; warm-up {opts.warmup} of each; "
        f"order: {' '.join('B' if label == BASELINE else 'S' for _, label in phase_order(opts.rounds))}"
    )
    for deal_id, why in report.excluded.items():
        print(f"not a template: {deal_id}: {why}")
    child = report.contract_activity_types
    print(
        f"standard path: {report.steps} activities per deal "
        f"({', '.join(report.deal_activity_types)}), then the contract workflow (child, "
        f"ABANDON) runs {len(child)} ({', '.join(child)}) before its first timer; baseline: "
        f"{report.steps} empty activities, then a child with {len(child)} empty activities "
        "before a timer. A phase ends when every child has settled (standard path: the first "
        "invoice e-mailed)."
    )
    for label in report.breakdowns:
        for option in report.activity_options(label):
            print(f"activity options ({label}): {option}")
    print(f"worker options (both workers): {', '.join(report.worker_options) or 'SDK defaults'}")
    if report.code_changed:
        print(
            "WARNING: code or rules under the project changed while the benchmark ran; "
            "the figures may mix versions: run it again"
        )
    print()
    for line in results_table(report):
        print(line)
    for table in (cpu_table(report), profile_table(report)):
        if table:
            print()
            for line in table:
                print(line)
    for label, sample in report.breakdowns.items():
        causes = Counter(c for _, b in sample for c in b.wft_failure_causes)
        if causes:
            listed = ", ".join(f"{n} × {c}" for c, n in causes.most_common())
            print(f"workflow task failures in the {label} sample: {listed}")
    errors = [e for p in report.phases for e in p.errors]
    timed_out = sum(p.timed_out for p in report.phases)
    if errors or timed_out:
        print()
        print(f"FAILURES: {len(errors)} workflows failed, {timed_out} timed out; first ones:")
        for error in errors[:10]:
            print(f"  {error}")


def report_json(report: Report, opts: Options, command: str) -> dict[str, Any]:
    return {
        "command": command,
        "options": asdict(opts),
        "machine": report.machine,
        "templates": report.templates,
        "excluded_templates": report.excluded,
        "phases": [p.summary() for p in report.phases],
        "steps": report.steps,
        "deal_activity_types": report.deal_activity_types,
        "contract_activity_types": report.contract_activity_types,
        "worker_options": report.worker_options,
        "activity_options": {label: report.activity_options(label) for label in report.breakdowns},
        "code_changed_during_run": report.code_changed,
        "ratio": round(report.ratio, 3),
        "ratio_per_round": [round(r, 3) for r in report.round_ratios()],
        "target_ratio": TARGET_RATIO,
        "target_met": report.ratio >= TARGET_RATIO,
        "breakdowns": {
            label: [
                {**asdict(b), "activity_options": sorted(b.activity_options)} for _, b in sample
            ]
            for label, sample in report.breakdowns.items()
        },
    }


def parse_args(argv: Sequence[str] | None = None) -> tuple[Options, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.standard_path",
        description="Deals/s through the standard path against a trivial baseline of as many empty activities.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--deals", type=int, default=DEFAULT_DEALS, help="N per phase (500)")
    size.add_argument("--quick", action="store_true", help=f"smoke run: N = {QUICK_DEALS}")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help=f"rounds of one phase of each kind; the order alternates, B S then S B ({DEFAULT_ROUNDS}, 1 with --quick)",
    )
    parser.add_argument("--warmup", type=int, default=None,
                        help=f"unmeasured workflows of each kind first (≥ 1; {DEFAULT_WARMUP}, "
                        f"{QUICK_WARMUP} with --quick)")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                        help="start calls in flight at most (50)")  # fmt: skip
    parser.add_argument("--in-flight", type=int, default=None,
                        help="workflows in flight at most, from start call to result (all N)")  # fmt: skip
    parser.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE_S,
                        help="seconds a phase may take before its stragglers count as timed out")  # fmt: skip
    parser.add_argument("--profile-sample", type=int, default=DEFAULT_PROFILE_SAMPLE,
                        help="histories read per phase for the time breakdown (0: none)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--require-target", action="store_true",
                        help=f"exit 2 when the ratio is below {TARGET_RATIO}")  # fmt: skip
    args = parser.parse_args(argv)
    deals = QUICK_DEALS if args.quick else args.deals
    if args.rounds is None:
        args.rounds = 1 if args.quick else DEFAULT_ROUNDS
    if args.warmup is None:
        args.warmup = QUICK_WARMUP if args.quick else DEFAULT_WARMUP
    if min(deals, args.rounds, args.concurrency, args.warmup) < 1 or args.deadline <= 0:
        parser.error("--deals, --rounds, --warmup and --concurrency must be ≥ 1, --deadline > 0")
    opts = Options(
        deals=deals, rounds=args.rounds, warmup=args.warmup,
        concurrency=args.concurrency, deadline_s=args.deadline,
        profile_sample=max(0, args.profile_sample), in_flight=args.in_flight,
    )  # fmt: skip
    return opts, args


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    opts, args = parse_args(argv)
    command = "python -m bench.standard_path " + " ".join(
        sys.argv[1:] if argv is None else list(argv)
    )
    try:
        report = event_loop.run(benchmark(opts))
    except KeyboardInterrupt:
        eprint("interrupted: the stack was stopped")
        return 130
    except BenchError as exc:
        eprint(f"benchmark failed: {exc} (the stack was stopped)")
        return 1
    print_report(report, opts, command.strip())
    if args.json:
        args.json.write_text(json.dumps(report_json(report, opts, command.strip()), indent=2))
    if report.failed:
        return 1
    if args.require_target and report.ratio < TARGET_RATIO:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
