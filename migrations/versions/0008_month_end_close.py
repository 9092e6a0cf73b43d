"""Month-end close: the close report of each period, and a per-statement balance check for
bulk postings (docs/month-end-close.md).

- `close_report`: the report of a period as JSON, `draft` once the checks ran, `final` once
  the period is locked (opening + billings - recognised = closing per currency, revenue by
  customer and product, unbilled receivables, the checks).
- Balanced entries, checked once per statement for bulk writers. Migration 0002 checks each
  journal line at commit (a deferred constraint trigger: one query per line). A close
  posts hundreds of thousands of lines, and that check alone cost about as much as writing
  them (bench/README.md). A transaction that sets `revops.balance_per_statement = 'on'` is
  checked instead at the end of each statement that inserts lines, every entry the
  statement touched at once (an AFTER STATEMENT trigger over the inserted rows), and its
  lines are not queued for the per-line check. The guarantee is the same, only earlier: in
  such a transaction each statement must leave every entry it touched balanced. Everyone
  else (the setting unset) keeps the check at commit, as before.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


UPGRADE = r"""
CREATE FUNCTION journal_entries_must_balance() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad record;
BEGIN
  IF current_setting('revops.balance_per_statement', true) IS DISTINCT FROM 'on' THEN
    RETURN NULL;
  END IF;
  -- One index lookup per entry touched (LATERAL keeps the planner off a scan of the ledger).
  SELECT t.entry_id, g.currency, g.gap INTO bad
    FROM (SELECT DISTINCT entry_id FROM inserted_lines) t
    CROSS JOIN LATERAL (
      SELECT l.currency, sum(l.debit) - sum(l.credit) AS gap
      FROM journal_line l WHERE l.entry_id = t.entry_id GROUP BY l.currency) g
    WHERE g.gap <> 0 LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'journal entry % does not balance in %: debits - credits = %',
      bad.entry_id, bad.currency, bad.gap USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER journal_lines_balanced_per_statement AFTER INSERT ON journal_line
  REFERENCING NEW TABLE AS inserted_lines
  FOR EACH STATEMENT EXECUTE FUNCTION journal_entries_must_balance();

DROP TRIGGER journal_line_balanced ON journal_line;

-- The WHEN of a constraint trigger is evaluated when the row is inserted, not at commit:
-- lines inserted under the per-statement check are never queued.
CREATE CONSTRAINT TRIGGER journal_line_balanced AFTER INSERT ON journal_line
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (current_setting('revops.balance_per_statement', true) IS DISTINCT FROM 'on')
  EXECUTE FUNCTION journal_entry_must_balance();
"""

DOWNGRADE = r"""
DROP TRIGGER journal_line_balanced ON journal_line;
CREATE CONSTRAINT TRIGGER journal_line_balanced AFTER INSERT ON journal_line
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION journal_entry_must_balance();
DROP TRIGGER journal_lines_balanced_per_statement ON journal_line;
DROP FUNCTION journal_entries_must_balance();
"""


def _statements(script: str) -> list[str]:
    """Split on the semicolons that end statements, not those inside $$ bodies (asyncpg runs
    one statement at a time)."""
    statements, current, in_body = [], [], False
    for line in script.splitlines():
        current.append(line)
        in_body ^= line.count("$$") % 2 == 1
        if not in_body and line.rstrip().endswith(";"):
            statements.append("\n".join(current).strip())
            current = []
    return [s for s in statements if s]


def upgrade() -> None:
    for statement in _statements(UPGRADE):
        op.execute(statement)
    op.create_table(
        "close_report",
        sa.Column("period", sa.Text(), primary_key=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("report", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("rules_version", sa.Text(), nullable=False),
        sa.Column("workflow_id", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("status IN ('draft', 'final')", name="close_report_status_known"),
    )
    op.execute("""
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'revops_app') THEN
    GRANT SELECT, INSERT, UPDATE ON close_report TO revops_app;
  END IF;
END $$""")


def downgrade() -> None:
    for statement in _statements(DOWNGRADE):
        op.execute(statement)
    op.drop_table("close_report")
