"""Credit notes are numbered in a series of their own per issuing entity (`LLUS-CN-000001`),
gap-free like invoices, so a customer's AP team and an auditor can tell them apart and
account for every number of each series.

- `invoice_sequence` gets `series` ('invoice' or 'credit_note'); its key becomes
  (entity_code, series). Existing rows are the invoice series.
- `invoice` gets `series`; the uniqueness of (entity_code, sequence) becomes
  (entity_code, series, sequence). Credit notes issued before this migration keep their
  numbers, which were taken from the invoice series, and stay in it.
- Downgrading is refused once a credit note has a number of its own series (it would have to
  be renumbered).

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _run(script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run("""
        ALTER TABLE invoice_sequence ADD COLUMN series text NOT NULL DEFAULT 'invoice';
        ALTER TABLE invoice_sequence DROP CONSTRAINT invoice_sequence_pkey;
        ALTER TABLE invoice_sequence ADD PRIMARY KEY (entity_code, series);
        ALTER TABLE invoice ADD COLUMN series text NOT NULL DEFAULT 'invoice';
        ALTER TABLE invoice DROP CONSTRAINT invoice_entity_code_sequence_key;
        ALTER TABLE invoice ADD CONSTRAINT invoice_entity_code_series_sequence_key
            UNIQUE (entity_code, series, sequence);
        ALTER TABLE invoice ADD CONSTRAINT invoice_series_known
            CHECK (series IN ('invoice', 'credit_note'));
    """)


def downgrade() -> None:
    issued = (
        op.get_bind()
        .execute(sa.text("SELECT count(*) FROM invoice WHERE series = 'credit_note'"))
        .scalar_one()
    )
    if issued:
        raise RuntimeError(
            f"{issued} credit notes are numbered in their own series; before 0009 they shared "
            "the invoice series, and renumbering issued documents is not allowed: downgrade "
            "refused"
        )
    _run("""
        ALTER TABLE invoice DROP CONSTRAINT invoice_series_known;
        ALTER TABLE invoice DROP CONSTRAINT invoice_entity_code_series_sequence_key;
        ALTER TABLE invoice ADD CONSTRAINT invoice_entity_code_sequence_key
            UNIQUE (entity_code, sequence);
        ALTER TABLE invoice DROP COLUMN series;
        ALTER TABLE invoice_sequence DROP CONSTRAINT invoice_sequence_pkey;
        DELETE FROM invoice_sequence WHERE series <> 'invoice';
        ALTER TABLE invoice_sequence DROP COLUMN series;
        ALTER TABLE invoice_sequence ADD PRIMARY KEY (entity_code);
    """)
