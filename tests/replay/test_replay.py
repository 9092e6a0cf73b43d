"""Today's workflow code replays the recorded histories without a non-determinism error.

A change to `workflows/` that would break running workflows fails here; guard it with
`workflow.patched` (DESIGN decision 10), then record new histories alongside the old ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import WORKFLOWS, workflow_runner

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays_on_todays_code(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=pydantic_data_converter,
                        workflow_runner=workflow_runner())  # fmt: skip
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


def test_histories_are_recorded() -> None:
    assert {p.stem for p in HISTORIES} >= {
        "deal_standard_path",
        "deal_amended_po",
        "case_amended_po",
        "case_escalated_override",
        "escalation_to_vp_finance",
        "signoff_late_after_flag",
    }
