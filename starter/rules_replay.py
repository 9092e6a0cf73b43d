"""Try a rule change against recorded history before it goes live (seed 001: "test routing
changes in staging").

Each stored gate input (the deal and customer standing one run of the QA gates saw) is run
through the candidate rules with the same pure `run_gates` the workflow uses, and compared
with what was recorded: which checks now fail or pass, and where each failure would go (owner
role, SLA, escalation chain). Only reads; nothing live changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import asyncpg

from models.customer import CustomerStanding
from models.deal import DealSubmission
from models.qa import run_gates
from models.routing import OperatingRules
from starter.rules_loader import RuleBook

Route = tuple[tuple[str, Decimal], ...]  # (role, SLA hours) per level, owner first


@dataclass
class EventChange:
    deal_id: str
    run_no: int
    recorded_version: str
    lines: list[str] = field(default_factory=list)


@dataclass
class ReplayReport:
    candidate_version: str
    events: int = 0
    changed: list[EventChange] = field(default_factory=list)


def _route(rules: OperatingRules | None, check_id: str) -> Route | None:
    if rules is None:
        return None
    return tuple((role.value, hours) for role, hours in rules.levels_for(check_id))


def _describe(route: Route | None) -> str:
    if route is None:
        return "(routing of that version not stored)"
    return " → ".join(f"{role} ({hours:g}h)" for role, hours in route)


def compare_run(
    recorded_failed: dict[str, str],
    recorded_rules: OperatingRules | None,
    candidate_failed: dict[str, str],
    candidate: OperatingRules,
) -> list[str]:
    """Lines saying how the routing of one gate run would differ (empty when it would not).

    `*_failed` map check id → owner role of the checks that failed."""
    lines = []
    for check_id in sorted(candidate_failed.keys() - recorded_failed.keys()):
        lines.append(f"now fails {check_id}: to {_describe(_route(candidate, check_id))}")
    for check_id in sorted(recorded_failed.keys() - candidate_failed.keys()):
        lines.append(f"no longer fails {check_id} (went to {recorded_failed[check_id]})")
    for check_id in sorted(recorded_failed.keys() & candidate_failed.keys()):
        before, after = _route(recorded_rules, check_id), _route(candidate, check_id)
        owner_changed = recorded_failed[check_id] != candidate_failed[check_id]
        if owner_changed or (before is not None and before != after):
            lines.append(f"re-routed {check_id}: {_describe(before)}  ⇒  {_describe(after)}")
    return lines


async def replay(pool: asyncpg.Pool, candidate: RuleBook, limit: int | None = None) -> ReplayReport:
    report = ReplayReport(candidate_version=candidate.version)
    stored = {
        r["version"]: OperatingRules.model_validate(r["operating"])
        for r in await pool.fetch("SELECT version, operating FROM rule_set")
    }
    rows = await pool.fetch(
        """SELECT i.deal_id, i.run_no, i.deal, i.standing, i.rules_version,
                  coalesce(jsonb_object_agg(g.check_id, g.owner_role)
                           FILTER (WHERE NOT g.passed), '{}'::jsonb) AS failed
           FROM gate_input i
           LEFT JOIN gate_result g ON g.deal_id = i.deal_id AND g.run_no = i.run_no
           GROUP BY i.deal_id, i.run_no, i.deal, i.standing, i.rules_version, i.created_at
           ORDER BY i.created_at, i.deal_id, i.run_no
           LIMIT $1""",
        limit,
    )
    for row in rows:
        report.events += 1
        deal = DealSubmission.model_validate(row["deal"])
        standing = CustomerStanding.model_validate(row["standing"])
        results = run_gates(deal, standing, candidate.policy)
        now_failing = {r.check_id: r.owner_role.value for r in results if not r.passed}
        lines = compare_run(dict(row["failed"]), stored.get(row["rules_version"]),
                            now_failing, candidate.operating)  # fmt: skip
        if lines:
            report.changed.append(
                EventChange(row["deal_id"], row["run_no"], row["rules_version"], lines)
            )
    return report
