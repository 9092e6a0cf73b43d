"""Contract lifecycle: what happens to a contract after it is booked.

- `milestone_delivery`: a milestone delivered and accepted (recognition and invoice follow);
- `tm_entry`: approved hours or deliverables of a T&M line, invoiced per period;
- `contract_amendment`: every validated amendment, with the schedule version it produced;
- `pricing_exception`: discounts and credits tracked from creation to expiry or use;
- `contract.status` / `contract.cancelled_on`: a cancelled contract bills and recognises
  nothing after its cancellation date;
- `usage_record.invoice_number`: the invoice a rated record was billed on.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONB = postgresql.JSONB(astext_type=sa.Text())
MONEY = sa.Numeric(20, 4)


def _recorded() -> sa.Column[Any]:
    return sa.Column(
        "recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "milestone_delivery",
        sa.Column("deal_id", sa.Text(), nullable=False),
        sa.Column("milestone_id", sa.Text(), nullable=False),
        sa.Column("delivered_on", sa.Date(), nullable=False),
        sa.Column("accepted_on", sa.Date(), nullable=False),
        sa.Column("accepted_by", sa.Text(), nullable=False),
        sa.Column("evidence", JSONB, nullable=False),
        _recorded(),
        sa.PrimaryKeyConstraint("deal_id", "milestone_id"),
    )
    op.create_table(
        "tm_entry",
        sa.Column("deal_id", sa.Text(), nullable=False),
        sa.Column("entry_id", sa.Text(), nullable=False),
        sa.Column("line_id", sa.Text(), nullable=False),
        sa.Column("work_date", sa.Date(), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Numeric(20, 4), nullable=False),
        sa.Column("unit_price", MONEY, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("approved_by", sa.Text(), nullable=False),
        sa.Column("invoice_number", sa.Text(), nullable=True),
        _recorded(),
        sa.PrimaryKeyConstraint("deal_id", "entry_id"),
    )
    op.create_index("ix_tm_entry_unbilled", "tm_entry", ["deal_id", "period"],
                    postgresql_where=sa.text("invoice_number IS NULL"))  # fmt: skip
    op.create_table(
        "contract_amendment",
        sa.Column("deal_id", sa.Text(), nullable=False),
        sa.Column("amendment_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("treatment", sa.Text(), nullable=False),
        sa.Column("schedule_version", sa.Integer(), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        _recorded(),
        sa.PrimaryKeyConstraint("deal_id", "amendment_id"),
    )
    op.create_table(
        "pricing_exception",
        sa.Column("deal_id", sa.Text(), nullable=False),
        sa.Column("exception_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("line_id", sa.Text(), nullable=True),
        sa.Column("detail", JSONB, nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=True),
        _recorded(),
        sa.PrimaryKeyConstraint("deal_id", "exception_id"),
        sa.CheckConstraint("kind IN ('discount', 'credit')", name="pricing_exception_kind_known"),
        sa.CheckConstraint(
            "status IN ('active', 'expired', 'used', 'cancelled')",
            name="pricing_exception_status_known",
        ),
    )
    with op.batch_alter_table("contract") as t:
        t.add_column(sa.Column("status", sa.Text(), server_default="active", nullable=False))
        t.add_column(sa.Column("cancelled_on", sa.Date(), nullable=True))
    with op.batch_alter_table("usage_record") as t:
        t.add_column(sa.Column("invoice_number", sa.Text(), nullable=True))
    op.execute("""
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'revops_app') THEN
    GRANT SELECT, INSERT ON milestone_delivery, contract_amendment TO revops_app;
    GRANT SELECT, INSERT, UPDATE ON tm_entry, pricing_exception TO revops_app;
  END IF;
END $$""")


def downgrade() -> None:
    with op.batch_alter_table("usage_record") as t:
        t.drop_column("invoice_number")
    with op.batch_alter_table("contract") as t:
        t.drop_column("cancelled_on")
        t.drop_column("status")
    op.drop_table("pricing_exception")
    op.drop_table("contract_amendment")
    op.drop_index("ix_tm_entry_unbilled", table_name="tm_entry")
    op.drop_table("tm_entry")
    op.drop_table("milestone_delivery")
