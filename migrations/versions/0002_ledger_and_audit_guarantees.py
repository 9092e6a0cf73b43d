"""Ledger and audit guarantees enforced by the database, whatever code writes the rows.

- every journal entry balances per currency (deferred constraint trigger: checked at commit);
- journal entries, journal lines and audit events are append-only (no UPDATE, no DELETE);
- an entry dated in a locked accounting period is refused;
- each audit event hashes its predecessor (sha256 over its fields and the previous hash).

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = r"""
CREATE FUNCTION journal_entry_must_balance() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad record;
BEGIN
  SELECT currency, sum(debit) - sum(credit) AS gap INTO bad
    FROM journal_line WHERE entry_id = NEW.entry_id
    GROUP BY currency HAVING sum(debit) <> sum(credit) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'journal entry % does not balance in %: debits - credits = %',
      NEW.entry_id, bad.currency, bad.gap USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER journal_line_balanced AFTER INSERT ON journal_line
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION journal_entry_must_balance();

ALTER TABLE journal_line ADD CONSTRAINT journal_line_one_side
  CHECK (debit >= 0 AND credit >= 0 AND (debit = 0 OR credit = 0) AND debit + credit > 0);

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused (post a correcting entry instead)',
    TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER journal_entry_append_only BEFORE UPDATE OR DELETE ON journal_entry
  FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER journal_line_append_only BEFORE UPDATE OR DELETE ON journal_line
  FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
  FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER journal_entry_no_truncate BEFORE TRUNCATE ON journal_entry
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER journal_line_no_truncate BEFORE TRUNCATE ON journal_line
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

CREATE FUNCTION journal_entry_period_open() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.period IS DISTINCT FROM to_char(NEW.entry_date, 'YYYY-MM') THEN
    RAISE EXCEPTION 'journal entry % is dated % but labelled period %',
      NEW.key, NEW.entry_date, NEW.period USING ERRCODE = 'check_violation';
  END IF;
  IF EXISTS (SELECT 1 FROM accounting_period WHERE period = NEW.period AND status = 'locked') THEN
    RAISE EXCEPTION 'accounting period % is locked: post the correction in an open period',
      NEW.period USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER journal_entry_open_period BEFORE INSERT ON journal_entry
  FOR EACH ROW EXECUTE FUNCTION journal_entry_period_open();

-- The text an audit event's hash covers; a verifier recomputes it row by row.
CREATE FUNCTION audit_event_digest(e audit_event) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(convert_to(concat_ws('|',
    e.seq, to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
    e.idempotency_key, e.actor, e.action, e.subject,
    coalesce(e.before::text, ''), coalesce(e.after::text, ''), coalesce(e.reason_code, ''),
    coalesce(e.rules_version, ''), coalesce(e.workflow_id, ''), coalesce(e.run_id, ''),
    coalesce(e.prev_hash, '')), 'UTF8')), 'hex')
$$;

CREATE SEQUENCE audit_event_seq AS bigint;

CREATE FUNCTION audit_event_chain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- One writer at a time extends the chain, so every event names its true predecessor.
  PERFORM pg_advisory_xact_lock(hashtext('audit_event_chain'));
  NEW.seq := nextval('audit_event_seq');
  SELECT hash INTO NEW.prev_hash FROM audit_event ORDER BY seq DESC LIMIT 1;
  NEW.hash := audit_event_digest(NEW);
  RETURN NEW;
END $$;

CREATE TRIGGER audit_event_hash_chain BEFORE INSERT ON audit_event
  FOR EACH ROW EXECUTE FUNCTION audit_event_chain();
"""

DOWNGRADE = r"""
DROP TRIGGER audit_event_hash_chain ON audit_event;
DROP FUNCTION audit_event_chain();
DROP SEQUENCE audit_event_seq;
DROP FUNCTION audit_event_digest(audit_event);
DROP TRIGGER journal_entry_open_period ON journal_entry;
DROP FUNCTION journal_entry_period_open();
DROP TRIGGER audit_event_no_truncate ON audit_event;
DROP TRIGGER journal_line_no_truncate ON journal_line;
DROP TRIGGER journal_entry_no_truncate ON journal_entry;
DROP TRIGGER audit_event_append_only ON audit_event;
DROP TRIGGER journal_line_append_only ON journal_line;
DROP TRIGGER journal_entry_append_only ON journal_entry;
DROP FUNCTION refuse_change();
ALTER TABLE journal_line DROP CONSTRAINT journal_line_one_side;
DROP TRIGGER journal_line_balanced ON journal_line;
DROP FUNCTION journal_entry_must_balance();
"""


def _statements(script: str) -> list[str]:
    """Split a script on the semicolons that end statements (not those inside $$ bodies);
    asyncpg runs one statement at a time."""
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


def downgrade() -> None:
    for statement in _statements(DOWNGRADE):
        op.execute(statement)
