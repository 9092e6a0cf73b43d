"""Usage records (SPEC §4, metered billing): what a customer consumed, reported in batches.

A record is identified by its contract and the sender's record id, so a batch sent twice
stores nothing twice. Records are rated per period at the close of the period; the period of
a record is the UTC month it occurred in.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from models.validation import describe_validation_error

Identifier = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:\-]+$")]


class UsageRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    record_id: Identifier = Field(description="The sender's id; the same id is stored once")
    contract_id: Identifier = Field(description="The contract (deal id) the usage belongs to")
    metric: Identifier = Field(description="What was consumed, e.g. api_calls, gb_stored")
    quantity: Annotated[Decimal, Field(ge=0, max_digits=20, decimal_places=6)]
    occurred_at: AwareDatetime = Field(description="When it was consumed (with a time zone)")

    @property
    def period(self) -> str:
        """The UTC month the usage belongs to, e.g. 2026-11."""
        return self.occurred_at.astimezone(UTC).strftime("%Y-%m")


class UsageBatchProblem(BaseModel):
    index: int
    problems: list[dict[str, str]]


_BATCH = TypeAdapter(list[UsageRecord])


def parse_usage_records(items: list[Any]) -> tuple[list[UsageRecord], list[UsageBatchProblem]]:
    """Validate every item; the problems name the item's index, the field and the rule.

    A clean batch is validated in one call (pydantic's core loops, not Python); only a batch
    with a problem is walked item by item to say which items are wrong."""
    with contextlib.suppress(ValidationError):  # some item is bad: find which below
        return _BATCH.validate_python(items), []
    records: list[UsageRecord] = []
    problems: list[UsageBatchProblem] = []
    for index, item in enumerate(items):
        try:
            records.append(UsageRecord.model_validate(item))
        except ValidationError as exc:
            problems.append(UsageBatchProblem(index=index, problems=describe_validation_error(exc)))
    return records, problems


def usage_row(record: UsageRecord) -> tuple[str, str, str, Decimal, datetime, str]:
    return (record.contract_id, record.record_id, record.metric, record.quantity,
            record.occurred_at, record.period)  # fmt: skip
