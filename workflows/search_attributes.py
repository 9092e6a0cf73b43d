"""Typed search attributes: what the Temporal Web UI can filter on. No personal data here."""

from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

STAGE = SearchAttributeKey.for_keyword("RevopsStage")
OWNER_ROLE = SearchAttributeKey.for_keyword("RevopsOwnerRole")
AMOUNT = SearchAttributeKey.for_float("RevopsAmount")
CURRENCY = SearchAttributeKey.for_keyword("RevopsCurrency")
CASE_STATUS = SearchAttributeKey.for_keyword("RevopsCaseStatus")
CHECK_ID = SearchAttributeKey.for_keyword("RevopsCheckId")
SLA_DEADLINE = SearchAttributeKey.for_datetime("RevopsSlaDeadline")
ESCALATION_LEVEL = SearchAttributeKey.for_int("RevopsEscalationLevel")
SLA_BREACHED = SearchAttributeKey.for_bool("RevopsSlaBreached")
AUDIT_FLAGGED = SearchAttributeKey.for_bool("RevopsAuditFlagged")

ALL: list[SearchAttributeKey[Any]] = [
    STAGE,
    OWNER_ROLE,
    AMOUNT,
    CURRENCY,
    CASE_STATUS,
    CHECK_ID,
    SLA_DEADLINE,
    ESCALATION_LEVEL,
    SLA_BREACHED,
    AUDIT_FLAGGED,
]

# `temporal server start-dev --search-attribute NAME=TYPE` spelling of each key.
_CLI_TYPES = {
    "KEYWORD": "Keyword", "DOUBLE": "Double", "DATETIME": "Datetime", "TEXT": "Text",
    "INT": "Int", "BOOL": "Bool",
}  # fmt: skip


def cli_flags() -> list[str]:
    """Arguments that register every key when the dev server starts."""
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={_CLI_TYPES[key.indexed_value_type.name]}"]
    return flags


def case_attributes(owner_role: str, check_id: str) -> TypedSearchAttributes:
    """What a new case is listed under in the Web UI: its owner, status and check."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(OWNER_ROLE, owner_role),
            SearchAttributePair(CASE_STATUS, "open"),
            SearchAttributePair(CHECK_ID, check_id),
            SearchAttributePair(ESCALATION_LEVEL, 0),
            SearchAttributePair(SLA_BREACHED, False),
        ]
    )


def contract_attributes(stage: str, amount: float, currency: str) -> TypedSearchAttributes:
    """What a contract workflow is listed under: its status, value and currency."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(STAGE, stage),
            SearchAttributePair(AMOUNT, amount),
            SearchAttributePair(CURRENCY, currency),
        ]
    )
