"""The baseline of the standard-path benchmark: Temporal's own cost of an N-step workflow.

`BaselineWorkflow` runs `steps` empty activities one after another (the benchmark passes the
number of activities a deal runs on the standard path), each a regular (not local)
activity with the deal workflow's timeout and retry policy (`workflows.STEP_TIMEOUT`,
`workflows.STEP_RETRY`). Whatever the benchmark measures on it is the floor the standard path
is compared with: server round trips, workflow tasks and the SDK, with no domain work at all.

It lives in its own module so the workflow sandbox re-imports only this small file.
"""

from __future__ import annotations

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from workflows import STEP_RETRY, STEP_TIMEOUT


@activity.defn
async def empty_step(step: int) -> int:
    """Does nothing and returns its step number: what is left is the cost of a step."""
    return step


@workflow.defn
class BaselineWorkflow:
    @workflow.run
    async def run(self, steps: int) -> int:
        done = 0
        for step in range(steps):
            await workflow.execute_activity(
                empty_step,
                step,
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=STEP_RETRY,
            )
            done += 1
        return done
