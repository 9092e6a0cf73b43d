"""Orchestration only: one module per workflow; logic lives in `models`."""

TASK_QUEUE = "revops"
