"""Orchestration only: one module per workflow; logic lives in `models`."""

from datetime import timedelta

from temporalio.common import RetryPolicy

TASK_QUEUE = "revops"

# Database and API steps: a step that outlives 10 s (its worker died, say) is retried; retries back off to 30 s and
# never give up, so a database that is down for an hour costs an hour, not the deal.
STEP_TIMEOUT = timedelta(seconds=10)
STEP_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
