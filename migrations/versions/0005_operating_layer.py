"""Operating layer: rule sets stored by version, the inputs of each QA gate run (so a rule
change can be replayed against them), and the case columns operators sort by (level, SLA
deadline, breached) plus the override's sign-off trail.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONB = postgresql.JSONB(astext_type=sa.Text())


def _now() -> sa.Column[Any]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "rule_set",
        sa.Column("version", sa.Text(), primary_key=True),
        sa.Column("policy", JSONB, nullable=False),
        sa.Column("operating", JSONB, nullable=False),
        sa.Column("files", JSONB, nullable=False),
        _now(),
    )
    op.create_table(
        "gate_input",
        sa.Column("deal_id", sa.Text(), nullable=False),
        sa.Column("run_no", sa.Integer(), nullable=False),
        sa.Column("deal", JSONB, nullable=False),
        sa.Column("standing", JSONB, nullable=False),
        sa.Column("rules_version", sa.Text(), nullable=False),
        _now(),
        sa.PrimaryKeyConstraint("deal_id", "run_no"),
    )
    with op.batch_alter_table("exception_case") as t:
        t.add_column(sa.Column("level", sa.Integer(), server_default="0", nullable=False))
        t.add_column(sa.Column("sla_deadline", sa.DateTime(timezone=True), nullable=True))
        t.add_column(sa.Column("breached", sa.Boolean(), server_default="false", nullable=False))
        t.add_column(sa.Column("override_expires_on", sa.Date(), nullable=True))
        t.add_column(sa.Column("signoff_due", sa.DateTime(timezone=True), nullable=True))
        t.add_column(sa.Column("signed_off_by", sa.Text(), nullable=True))
        t.add_column(sa.Column("signed_off_at", sa.DateTime(timezone=True), nullable=True))
        t.add_column(
            sa.Column("audit_flagged", sa.Boolean(), server_default="false", nullable=False)
        )
    op.execute("""
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'revops_app') THEN
    GRANT SELECT, INSERT ON rule_set, gate_input TO revops_app;
  END IF;
END $$""")


def downgrade() -> None:
    with op.batch_alter_table("exception_case") as t:
        for column in ("audit_flagged", "signed_off_at", "signed_off_by", "signoff_due",
                       "override_expires_on", "breached", "sla_deadline", "level"):  # fmt: skip
            t.drop_column(column)
    op.drop_table("gate_input")
    op.drop_table("rule_set")
