"""Usage records, stored once per (contract, record id) and rated per period later.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_record",
        sa.Column("contract_id", sa.Text(), nullable=False),
        sa.Column("record_id", sa.Text(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Numeric(26, 6), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("billed_period", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("contract_id", "record_id"),
    )
    op.create_index("ix_usage_record_unbilled", "usage_record", ["contract_id", "period"],
                    postgresql_where=sa.text("billed_period IS NULL"))  # fmt: skip
    op.execute("""
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'revops_app') THEN
    GRANT SELECT, INSERT, UPDATE ON usage_record TO revops_app;
  END IF;
END $$""")


def downgrade() -> None:
    op.drop_index("ix_usage_record_unbilled", table_name="usage_record")
    op.drop_table("usage_record")
