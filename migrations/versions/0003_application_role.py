"""The application acts as `revops_app`, which may read and append to the ledger and the audit
trail but never update, delete or truncate them, and owns nothing (so it cannot disable the
append-only triggers either). Migrations run as the owner (`SET ROLE NONE` in env.py).

Where the role does not exist (a production database set up without it), nothing changes
here: create it, grant it to the workers' login role, and run the migrations again.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = "journal_entry, journal_line, audit_event"
READ_WRITE = (
    "inbox, api_key, customer, contract, gate_result, exception_case, invoice_sequence, "
    "invoice, recognition_schedule, accounting_period"
)

UPGRADE = f"""
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'revops_app') THEN
    GRANT SELECT, INSERT ON {APPEND_ONLY} TO revops_app;
    GRANT SELECT, INSERT, UPDATE ON {READ_WRITE} TO revops_app;
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO revops_app;
    GRANT SELECT ON alembic_version TO revops_app;
    IF pg_has_role(current_user, 'revops_app', 'MEMBER') THEN
      -- Every new session of this login starts as revops_app.
      EXECUTE format('ALTER ROLE %I SET role = %L', current_user, 'revops_app');
    END IF;
  END IF;
END $$
"""

DOWNGRADE = f"""
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'revops_app') THEN
    EXECUTE format('ALTER ROLE %I RESET role', current_user);
    REVOKE ALL ON {APPEND_ONLY}, {READ_WRITE}, alembic_version FROM revops_app;
    REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM revops_app;
  END IF;
END $$
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
