"""`bench.standard_path.run_phase`: how many workflows it keeps between start call and result,
driven by stand-in handles whose results take a little while."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from bench.standard_path import (
    BASELINE,
    GC_ROW,
    STANDARD,
    CpuMeter,
    CpuSample,
    GcClock,
    Phase,
    Report,
    Run,
    parse_args,
    phase_order,
    results_table,
    run_phase,
)


@dataclass
class _Load:
    """Counts the workflows between their start call and their result."""

    running: int = 0
    most: int = 0


class _Handle:
    def __init__(self, load: _Load, i: int) -> None:
        self.id = f"wf-{i}"
        self._load = load

    async def result(self) -> str:
        await asyncio.sleep(0.01)
        self._load.running -= 1
        return "ok" if self.id != "wf-7" else "bad"


def _starter(load: _Load) -> Any:
    async def start_one(i: int) -> _Handle:
        load.running += 1
        load.most = max(load.most, load.running)
        return _Handle(load, i)

    return start_one


def _check(result: str) -> str | None:
    return None if result == "ok" else f"result {result!r}"


async def test_in_flight_bounds_the_workflows_between_start_and_result() -> None:
    load = _Load()
    phase = await run_phase(
        "p", 1, 40, _starter(load), _check, concurrency=50, deadline_s=30, in_flight=5
    )
    assert load.most == 5
    assert len(phase.runs) == 40 and phase.timed_out == 0
    assert [r.workflow_id for r in phase.runs if r.error] == ["wf-7"]
    assert phase.runs[7].error == "result 'bad'"


async def test_without_in_flight_every_workflow_starts_at_once() -> None:
    load = _Load()
    phase = await run_phase("p", 1, 40, _starter(load), _check, concurrency=50, deadline_s=30)
    assert load.most == 40
    assert len(phase.ok) == 39


def test_phases_alternate_so_both_kinds_run_as_often_early_as_late() -> None:
    assert phase_order(2) == [(1, BASELINE), (1, STANDARD), (2, STANDARD), (2, BASELINE)]
    order = [label for _, label in phase_order(4)]
    assert order == ["baseline", "standard path", "standard path", "baseline"] * 2
    # Over an even number of rounds the mean position of each kind is the same.
    positions = {
        k: [i for i, label in enumerate(order) if label == k] for k in (BASELINE, STANDARD)
    }
    assert sum(positions[BASELINE]) == sum(positions[STANDARD])


def test_default_run_is_four_rounds_after_a_warm_up_of_100_and_quick_is_one_round() -> None:
    opts, _ = parse_args([])
    assert (opts.deals, opts.rounds, opts.warmup) == (500, 4, 100)
    quick, _ = parse_args(["--quick"])
    assert (quick.deals, quick.rounds, quick.warmup) == (50, 1, 10)
    chosen, _ = parse_args(["--quick", "--rounds", "3", "--warmup", "5"])
    assert (chosen.rounds, chosen.warmup) == (3, 5)


def test_the_cpu_table_shows_this_process_garbage_collection_apart() -> None:
    before = CpuSample(10.0, 0.0, {"python": {1: 2.0}, "server": {2: 3.0}}, gc_s=0.5)
    after = CpuSample(20.0, 0.25, {"python": {1: 6.0}, "server": {2: 8.0}}, gc_s=1.0)
    used = CpuMeter.used(before, after)
    assert list(used) == [
        "python", GC_ROW, "server", "other processes (not ours)",
        "machine (all processes)", "stolen by the hypervisor",
    ]  # fmt: skip
    assert used[GC_ROW] == 0.5  # part of python's 4.0, not counted again
    assert used["other processes (not ours)"] == 1.0  # 10 busy - 4 - 5


def test_the_gc_clock_adds_up_the_collectors_passes() -> None:
    clock = GcClock()
    clock("start", {"generation": 0})
    clock("stop", {"generation": 0, "collected": 0, "uncollectable": 0})
    first = clock.total_s
    assert first > 0
    clock("start", {"generation": 2})
    clock("stop", {"generation": 2, "collected": 0, "uncollectable": 0})
    assert clock.total_s > first


def _phase(label: str, round_no: int, done: int, wall_s: float) -> Phase:
    runs = [Run(f"{label}-{round_no}-{i}", 100.0, 100.1, 100.0 + wall_s, None) for i in range(done)]
    return Phase(label, round_no, runs, timed_out=0)


def test_the_ratio_is_over_the_sums_and_each_rounds_ratio_is_shown_beside_it() -> None:
    phases = [
        _phase(STANDARD, 0, 10, 5.0),  # the warm-up counts for nothing
        _phase(BASELINE, 1, 100, 10.0), _phase(STANDARD, 1, 100, 12.5),  # 8 ÷ 10
        _phase(STANDARD, 2, 100, 20.0), _phase(BASELINE, 2, 100, 12.5),  # 5 ÷ 8
    ]  # fmt: skip
    report = Report(
        machine={}, templates=[], excluded={}, phases=phases, breakdowns={}, steps=6,
        deal_activity_types=(), contract_activity_types=(), worker_options=[], code_changed=False,
    )  # fmt: skip
    assert report.round_ratios() == [0.8, 0.625]
    assert round(report.ratio, 4) == round((200 / 32.5) / (200 / 22.5), 4)  # 0.6923
    lines = results_table(report)
    assert lines[-2].endswith("= 0.69  (target ≥ 0.7: NOT MET)")
    assert lines[-1] == (
        "ratio per round: 0.80, 0.62 (the ratio above is over the sums; spread 0.62 to 0.80)"
    )
