"""Deal intake, shared by every door (file, HTTP API, HubSpot webhook).

Every submission is stored raw in the inbox first; only then is it parsed. A malformed one
stays in the inbox marked invalid with each bad field named; a valid one starts (or finds)
the `deal-<id>` workflow and the inbox row records which.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from pydantic import ValidationError
from temporalio.client import Client

from models.deal import DealSubmission
from models.deal_flow import DealInput
from models.rules import RuleSet
from models.validation import describe_validation_error, problem_lines
from starter.deal_start import StartResult, start_deal


@dataclass(frozen=True)
class IntakeResult:
    """What a door answers: the inbox row, and either the workflow or the problems."""

    inbox_id: int
    deal_id: str | None
    workflow_id: str | None = None
    started: bool = False
    problems: list[dict[str, str]] = field(default_factory=list)
    repeated: bool = False

    @property
    def accepted(self) -> bool:
        return not self.problems

    @property
    def message(self) -> str:
        if self.problems:
            return "invalid: " + "; ".join(problem_lines(self.problems))
        if self.started:
            return f"started workflow {self.workflow_id}"
        return f"duplicate: workflow {self.workflow_id} already handles this deal"

    def as_json(self) -> dict[str, Any]:
        status = "invalid" if self.problems else ("started" if self.started else "duplicate")
        body: dict[str, Any] = {
            "status": status,
            "inbox_id": self.inbox_id,
            "message": self.message,
        }
        if self.deal_id:
            body["deal_id"] = self.deal_id
        if self.workflow_id:
            body["workflow_id"] = self.workflow_id
        if self.problems:
            body["errors"] = self.problems
        return body


def content_id(body: str) -> str:
    """A submission's source id when the door has none of its own: the hash of its text."""
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


class Intake:
    def __init__(self, pool: asyncpg.Pool, client: Client, rules: RuleSet, task_queue: str) -> None:
        self._pool = pool
        self._client = client
        self._rules = rules
        self._task_queue = task_queue

    async def store_raw(
        self, source: str, source_id: str, content_type: str, body: str
    ) -> tuple[int, bool]:
        """Insert the raw submission; (inbox id, True) when the same one was received before."""
        row_id = await self._pool.fetchval(
            """INSERT INTO inbox (source, source_id, content_type, body) VALUES ($1, $2, $3, $4)
               ON CONFLICT (source, source_id) DO NOTHING RETURNING id""",
            source, source_id, content_type, body,
        )  # fmt: skip
        if row_id is not None:
            return row_id, False
        existing = await self._pool.fetchval(
            "SELECT id FROM inbox WHERE source = $1 AND source_id = $2", source, source_id
        )
        return existing, True

    async def mark(self, inbox_id: int, status: str, *, deal_id: str | None = None,
                   workflow_id: str | None = None, errors: list[dict[str, str]] | None = None) -> None:  # fmt: skip
        await self._pool.execute(
            """UPDATE inbox SET status = $2, deal_id = coalesce($3, deal_id),
                   workflow_id = coalesce($4, workflow_id), errors = $5
               WHERE id = $1 AND status <> 'started'""",  # a redelivery keeps 'started'
            inbox_id, status, deal_id, workflow_id, errors,
        )  # fmt: skip

    async def submit_deal(
        self, source: str, payload: Any, raw: str, submitted_by: str
    ) -> IntakeResult:
        """Store, parse and start one deal given as parsed JSON (`payload`) and its raw text."""
        inbox_id, repeated = await self.store_raw(source, content_id(raw), "application/json", raw)
        deal_id = payload.get("deal_id") if isinstance(payload, dict) else None
        try:
            deal = DealSubmission.model_validate(payload)
        except ValidationError as exc:
            problems = describe_validation_error(exc)
            await self.mark(
                inbox_id, "invalid", deal_id=str(deal_id) if deal_id else None, errors=problems
            )
            return IntakeResult(
                inbox_id=inbox_id, deal_id=str(deal_id) if deal_id else None, problems=problems
            )
        data = DealInput(
            deal=deal,
            source=source,
            inbox_id=inbox_id,
            submitted_by=submitted_by,
            rules=self._rules,
        )
        return await self._start(inbox_id, deal.deal_id, data, repeated)

    async def submit_invalid(
        self, source: str, raw: str, content_type: str, problems: list[dict[str, str]]
    ) -> IntakeResult:
        """Keep a submission that could not even be read as a deal (bad JSON, bad CSV row)."""
        inbox_id, _ = await self.store_raw(source, content_id(raw), content_type, raw)
        await self.mark(inbox_id, "invalid", errors=problems)
        return IntakeResult(inbox_id=inbox_id, deal_id=None, problems=problems)

    async def submit_crm_event(
        self, source: str, event_id: str, crm_deal_id: str, raw: str, submitted_by: str
    ) -> IntakeResult:
        """A CRM said deal `crm_deal_id` is closed-won: the workflow reads the deal itself."""
        inbox_id, repeated = await self.store_raw(source, event_id, "application/json", raw)
        data = DealInput(crm_deal_id=crm_deal_id, source=source, inbox_id=inbox_id,
                         submitted_by=submitted_by, rules=self._rules)  # fmt: skip
        return await self._start(inbox_id, crm_deal_id, data, repeated)

    async def _start(
        self, inbox_id: int, deal_id: str, data: DealInput, repeated: bool
    ) -> IntakeResult:
        result: StartResult = await start_deal(self._client, data, self._task_queue)
        await self.mark(inbox_id, "started" if result.started else "duplicate",
                        deal_id=deal_id, workflow_id=result.workflow_id)  # fmt: skip
        return IntakeResult(inbox_id=inbox_id, deal_id=deal_id, workflow_id=result.workflow_id,
                            started=result.started, repeated=repeated)  # fmt: skip


def parse_json_text(text: str) -> tuple[Any, list[dict[str, str]]]:
    """JSON text → value, or a problem naming the line and column."""
    try:
        return json.loads(text), []
    except json.JSONDecodeError as exc:
        return None, [
            {
                "field": f"line {exc.lineno}, column {exc.colno}",
                "rule": f"not valid JSON: {exc.msg}",
                "input": "",
            }
        ]
