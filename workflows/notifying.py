"""Notifying people from a workflow: one activity call, and a failure that is reported to
the caller (for its timeline) instead of failing the workflow that wanted to tell someone."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.notifications import NotificationActivities, NotificationInput, Recipient
    from models.notices import Notice
    from models.routing import Contact
    from workflows import STEP_TIMEOUT

# The SLA does not wait for the mail server: after these attempts the failure is recorded.
NOTIFY_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=5)


async def notify(key: str, subject_ref: str, people: list[Contact], notice: Notice) -> str | None:
    """Send `notice` to `people` once per `key`; None when sent, else why not."""
    if not people:
        return "nobody to notify"
    try:
        await workflow.execute_activity_method(
            NotificationActivities.send_notification,
            NotificationInput(
                idempotency_key=key, subject_ref=subject_ref,
                recipients=[Recipient(person=p.person, name=p.name, email=p.email) for p in people],
                subject=notice.subject, body=notice.body, chat_text=notice.chat_text,
            ),
            start_to_close_timeout=STEP_TIMEOUT, retry_policy=NOTIFY_RETRY,
            summary=f"notify {', '.join(p.person for p in people)}",
        )  # fmt: skip
    except ActivityError as exc:
        return f"notification failed: {exc.cause or exc}"
    return None
