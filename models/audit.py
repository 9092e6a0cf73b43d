"""Audit events: who did what to which subject, when, why and under which rules."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SYSTEM_ACTOR = "system"


class AuditEvent(BaseModel):
    """One append-only audit record; `key` makes a retried write happen once."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(description="Idempotency key: '<workflow id>:<step>'")
    actor: str = Field(description="Person (from the authenticated caller) or 'system'")
    action: str = Field(description="What happened, e.g. 'gates.run', 'invoice.issued'")
    subject: str = Field(description="What it happened to, e.g. 'deal:90412001'")
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    reason_code: str | None = None
    rules_version: str | None = None
