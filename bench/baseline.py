"""The baseline of the standard-path benchmark: Temporal's own cost of the same shape of work.

A deal on the standard path is a `DealWorkflow` that runs its activities and then starts its
`ContractWorkflow` child (ABANDON), which runs its first activities (e-mailing the first
invoice) and then waits on a durable timer for its next invoice date. The baseline has the
same shape with no domain work at all:

- `BaselineWorkflow` runs `steps` empty activities one after another, then starts a
  `BaselineContractWorkflow` child with the same parent-close policy. Neither sets search
  attributes: like the deal's, the contract's are the product's own cost;
- the child runs `child_steps` empty activities, the last of which records in this process
  that the child has settled (the benchmark waits for that, as it waits for each contract's
  first invoice to be e-mailed), then sleeps on a timer.

The benchmark passes the counts it read from the warm-up deals' histories. Every activity is
a regular (not local) one with the deal workflow's timeout and retry policy
(`workflows.STEP_TIMEOUT`, `workflows.STEP_RETRY`). Whatever the benchmark measures on it is
the floor the standard path is compared with: server round trips, workflow tasks, the child
start, the timer and the SDK.

It lives in its own module so the workflow sandbox re-imports only this small file; its
input and activities are in `bench.baseline_steps`, passed through the sandbox as the
product's are.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from bench.baseline_steps import CHILD_WAIT, BaselineShape, empty_step, last_child_step
    from workflows import STEP_RETRY, STEP_TIMEOUT


async def _empty_steps(count: int) -> None:
    for step in range(count):
        await workflow.execute_activity(
            empty_step, step, start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY
        )


@workflow.defn
class BaselineContractWorkflow:
    @workflow.run
    async def run(self, child_steps: int) -> None:
        await _empty_steps(child_steps - 1)
        await workflow.execute_activity(
            last_child_step, workflow.info().workflow_id,
            start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY,
        )  # fmt: skip
        await workflow.sleep(CHILD_WAIT)


@workflow.defn
class BaselineWorkflow:
    @workflow.run
    async def run(self, shape: BaselineShape) -> int:
        await _empty_steps(shape.steps)
        if shape.child_steps > 0:
            await workflow.start_child_workflow(
                BaselineContractWorkflow.run, shape.child_steps,
                id=f"{workflow.info().workflow_id}-child",
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary="baseline child",
            )  # fmt: skip
        return shape.steps
