"""The deal's state as finance reads it: amounts formatted for their currency."""

from __future__ import annotations

from typing import Any

from models.deal_flow import DealState


def deal_status_view(state: DealState) -> dict[str, Any]:
    deal, inv, bal = state.deal, state.invoice, state.balances
    view: dict[str, Any] = {
        "deal_id": state.deal_id,
        "stage": state.stage.value,
        "source": state.source,
        "rules_version": state.rules_version,
        "customer": deal.customer.name if deal else None,
        "tcv": str(deal.tcv()) if deal else None,
        "arr": str(deal.arr()) if deal else None,
        "gates": {
            "runs": state.gate_runs,
            "failed": [
                {"check_id": g.check_id, "owner_role": g.owner_role.value, "messages": g.messages}
                for g in state.gates
                if not g.passed
            ],
            "accepted": state.accepted_checks,
        },
        "open_cases": [c.model_dump(mode="json") for c in state.open_cases],
        "resolutions": [
            {
                "check_id": r.check_id,
                "status": r.status.value,
                "action": r.resolution.action.value if r.resolution else None,
                "actor": r.resolution.actor if r.resolution else None,
                "reason_code": r.resolution.reason_code if r.resolution else None,
            }
            for r in state.resolutions
        ],
        "invoice": None,
        "billing_note": state.billing_note,
        "recognition": None,
        "postings": [
            {
                "key": e.key,
                "date": e.entry_date.isoformat(),
                "description": e.description,
                "lines": [
                    {
                        "account": line.account.value,
                        "debit": str(line.debit),
                        "credit": str(line.credit),
                        "currency": line.currency,
                    }
                    for line in e.lines
                ],
            }
            for e in state.postings
        ],
        "outcome": state.outcome,
    }
    if inv:
        view["invoice"] = {
            "number": inv.number, "entity": inv.entity.legal_name, "date": inv.invoice_date.isoformat(),
            "due_date": inv.due_date.isoformat(), "po_number": inv.po_number,
            "subtotal": str(inv.subtotal), "tax": f"{inv.tax} ({inv.tax_label})", "total": str(inv.total),
        }  # fmt: skip
    if bal:
        view["recognition"] = {
            "recognised": str(bal.recognised), "deferred_revenue": str(bal.deferred_revenue),
            "unbilled_receivable": str(bal.unbilled_receivable), "receivable": str(bal.receivable),
            "schedule_entries": len(state.schedule.entries) if state.schedule else 0,
            "convention": state.schedule.convention if state.schedule else None,
        }  # fmt: skip
    return view
